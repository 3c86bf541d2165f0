/*
 * banned: functions we never call, like git's banned.h.  Included first in
 * every translation unit by the Makefile.  Use snprintf, strlcpy-like
 * helpers in util.h, strtok_r.  Force-included through compat.h.
 */
#ifndef MSGW_BANNED_H
#define MSGW_BANNED_H

#define BANNED(func) sorry_##func##_is_a_banned_function

#undef strcpy
#define strcpy(x, y) BANNED(strcpy)
#undef strcat
#define strcat(x, y) BANNED(strcat)
#undef sprintf
#define sprintf(...) BANNED(sprintf)
#undef vsprintf
#define vsprintf(...) BANNED(vsprintf)
#undef strtok
#define strtok(x, y) BANNED(strtok)
#undef gets
#define gets(x) BANNED(gets)

#endif
