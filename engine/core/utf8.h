/* utf8.h — making text valid UTF-8 where the engine stores or sends it.
 *
 * Outcome messages come from Lua errors, which may hold any bytes, and are
 * cut to a fixed size, which may split a character. PostgreSQL refuses
 * such text and jansson cannot hold it, so every message is repaired once
 * where it is made. */
#ifndef AC_CORE_UTF8_H
#define AC_CORE_UTF8_H

#include <stddef.h>

/* Replaces, in place, every byte of s[0..len) that is not part of a valid
 * UTF-8 sequence (overlong forms, surrogates and code points past U+10FFFF
 * included, and a sequence cut off at the end) with '?'. The length never
 * changes. Returns the number of bytes replaced. */
size_t ac_utf8_repair(char *s, size_t len);

/* 1 if s[0..len) is valid UTF-8 as ac_utf8_repair understands it. */
int ac_utf8_valid(const char *s, size_t len);

#endif
