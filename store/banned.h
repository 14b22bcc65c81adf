/*
 * banned.h - functions this project does not use, made compile errors (as
 * git does).  Use snprintf, strlcpy-like bounded copies written with
 * snprintf or memcpy, strtok_r, gmtime_r, localtime_r and strtol instead.
 * Included into every file by the Makefile.
 */
#ifndef REPLICAFS_BANNED_H
#define REPLICAFS_BANNED_H

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
#undef gmtime
#define gmtime(t) BANNED(gmtime)
#undef localtime
#define localtime(t) BANNED(localtime)
#undef atoi
#define atoi(s) BANNED(atoi)

#endif
