/* Keeps the support library non-empty before any helper exists. */
typedef int ac_test_support_empty;
