/*
 * restore: the msgw-restore front end.  Each subcommand lives in
 * cmd_<name>.c and is listed in the table in main.c (see agent/agent.h for
 * the steps to add one).
 */
#ifndef MSGW_RESTORE_H
#define MSGW_RESTORE_H

#include "fe.h"

#endif
