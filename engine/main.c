/* main.c — command dispatch only. */
#include <stdio.h>
int main(void) { puts("agentcore " AC_VERSION); return 0; }
