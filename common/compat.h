/*
 * compat: force-included before every source file (see the Makefile): the
 * system headers whose functions banned.h bans, then banned.h itself, so the
 * ban applies to our code and not to the system's declarations.
 */
#ifndef MSGW_COMPAT_H
#define MSGW_COMPAT_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

#include "banned.h"

#endif
