/*
 * main.c: msgw-sim's front door.  It finds the subcommand in a table, parses
 * that subcommand's options with getopt_long from one shared, sorted option
 * list (each command accepts only the subset its row names), checks the
 * number of positional arguments, and calls the command.  Usage errors print
 * the command's synopsis to stderr and exit 2; --help prints to stdout and
 * exits 0.  Nothing here knows about gateways.
 */
#include <getopt.h>
#include <stdarg.h>

#include "sim.h"

#ifndef MSGW_VERSION
#define MSGW_VERSION "0.0.0"
#endif

struct sim_cmd {
	const char *name;
	int (*fn)(const struct sim_opts *o);
	const char *opts; /* the option letters (see all_options) it accepts */
	int min_args;
	int max_args;
	const char *synopsis;
};

static const struct sim_cmd commands[] = {
    {"init", sim_cmd_init, "PODnmsV", 1, 1,
     "init DIR --domain D --mailboxes N [--seed S] [--console-port P] [--pop3-port P]"
     " [--version V] [--mode server|proxy]"},
    {"start", sim_cmd_start, "l", 1, 1, "start DIR [--listen ADDR]"},
    {"stop", sim_cmd_stop, "t", 1, 1, "stop DIR [--timeout SECONDS]"},
    {"status", sim_cmd_status, "", 1, 1, "status DIR"},
    {"deliver", sim_cmd_deliver, "", 2, 3, "deliver DIR MBX [N]"},
    {"fetch", sim_cmd_fetch, "", 3, 3, "fetch DIR MBX PASSWORD"},
    {"add-mailbox", sim_cmd_add_mailbox, "d", 1, 1, "add-mailbox DIR [--description TEXT]"},
    {"reset-password", sim_cmd_reset_password, "", 2, 2, "reset-password DIR MBX"},
    {"suspend", sim_cmd_suspend, "", 2, 2, "suspend DIR MBX"},
    {"activate", sim_cmd_activate, "", 2, 2, "activate DIR MBX"},
    {"delete", sim_cmd_delete, "", 2, 2, "delete DIR MBX"},
    {"set", sim_cmd_set, "", 3, 3,
     "set DIR KEY VALUE    (KEY: domain, mode, version, ports.NAME,"
     " mailbox.ID.description)"},
    {"list", sim_cmd_list, "", 1, 1, "list DIR"},
};

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

/* Sorted by name; the val letters are what the table's opts strings name. */
static const struct option all_options[] = {
    {"console-port", required_argument, NULL, 'P'}, {"description", required_argument, NULL, 'd'},
    {"domain", required_argument, NULL, 'D'},	    {"help", no_argument, NULL, 'h'},
    {"listen", required_argument, NULL, 'l'},	    {"mailboxes", required_argument, NULL, 'n'},
    {"mode", required_argument, NULL, 'm'},	    {"pop3-port", required_argument, NULL, 'O'},
    {"seed", required_argument, NULL, 's'},	    {"timeout", required_argument, NULL, 't'},
    {"version", required_argument, NULL, 'V'},
};

#define NOPTIONS (sizeof(all_options) / sizeof(all_options[0]))

static const struct sim_cmd *find_command(const char *name)
{
	for (size_t i = 0; i < NCOMMANDS; i++)
		if (strcmp(commands[i].name, name) == 0)
			return &commands[i];
	return NULL;
}

static void print_usage(FILE *f)
{
	fprintf(f, "usage: %s COMMAND ARGS...\n\n", SIM_PROG);
	for (size_t i = 0; i < NCOMMANDS; i++)
		fprintf(f, "  %s %s\n", SIM_PROG, commands[i].synopsis);
	fprintf(f, "\nenvironment: MSGW_SIM_START_DELAY=SECONDS (daemon waits before listening),\n"
		   "  MSGW_SIM_STOP_HANG=1 (daemon ignores SIGTERM),\n"
		   "  MSGW_SIM_STOP_EARLY=1 (stop signals, returns at once and exits 0),\n"
		   "  MSGW_SIM_STOP_DELAY=SECONDS (daemon takes that long to exit, then writes\n"
		   "  back the Gateway.json it loaded), MSGW_SIM_TLS_BROKEN=1 (TLS answered\n"
		   "  with garbage), SOURCE_DATE_EPOCH\n");
}

int sim_usage_error(const struct sim_opts *o, const char *fmt, ...)
{
	const struct sim_cmd *c = find_command(o->cmd);
	va_list ap;

	fprintf(stderr, "%s: ", SIM_PROG);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	if (c)
		fprintf(stderr, "usage: %s %s\n", SIM_PROG, c->synopsis);
	return SIM_EXIT_USAGE;
}

static void store_option(struct sim_opts *o, int val, const char *arg)
{
	switch (val) {
	case 'P':
		o->console_port = arg;
		break;
	case 'O':
		o->pop3_port = arg;
		break;
	case 'd':
		o->description = arg;
		break;
	case 'D':
		o->domain = arg;
		break;
	case 'l':
		o->listen = arg;
		break;
	case 'n':
		o->mailboxes = arg;
		break;
	case 'm':
		o->mode = arg;
		break;
	case 's':
		o->seed = arg;
		break;
	case 't':
		o->timeout = arg;
		break;
	case 'V':
		o->version = arg;
		break;
	default:
		break;
	}
}

/* The options of all_options that command c accepts, plus --help. */
static void command_options(const struct sim_cmd *c, struct option out[NOPTIONS + 1])
{
	size_t n = 0;

	for (size_t i = 0; i < NOPTIONS; i++)
		if (all_options[i].val == 'h' || strchr(c->opts, all_options[i].val))
			out[n++] = all_options[i];
	memset(&out[n], 0, sizeof(out[n]));
}

/* Returns -1 to go on, or the exit code (help or usage error). */
static int parse_options(const struct sim_cmd *c, int argc, char **argv, struct sim_opts *o)
{
	struct option longopts[NOPTIONS + 1];
	int ch;

	command_options(c, longopts);
	opterr = 0;
	optind = 1;
	while ((ch = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
		if (ch == 'h') {
			printf("usage: %s %s\n", SIM_PROG, c->synopsis);
			return SIM_EXIT_OK;
		}
		if (ch == ':')
			return sim_usage_error(o, "option '%s' needs a value", argv[optind - 1]);
		if (ch == '?')
			return sim_usage_error(o, "unknown option '%s'", argv[optind - 1]);
		store_option(o, ch, optarg);
	}
	o->args = argv + optind;
	o->nargs = argc - optind;
	if (o->nargs < c->min_args)
		return sim_usage_error(o, "too few arguments");
	if (o->nargs > c->max_args)
		return sim_usage_error(o, "too many arguments");
	return -1;
}

static int print_version(void)
{
	printf("%s %s (jansson %s, libsodium %s)\n", SIM_PROG, MSGW_VERSION, JANSSON_VERSION,
	       sodium_version_string());
	return SIM_EXIT_OK;
}

int main(int argc, char **argv)
{
	struct sim_opts o;
	const struct sim_cmd *c;
	int rc;

	if (argc < 2) {
		print_usage(stderr);
		return SIM_EXIT_USAGE;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		print_usage(stdout);
		return SIM_EXIT_OK;
	}
	if (strcmp(argv[1], "--version") == 0)
		return print_version();
	c = find_command(argv[1]);
	if (!c) {
		fprintf(stderr, "%s: unknown command '%s'\n", SIM_PROG, argv[1]);
		print_usage(stderr);
		return SIM_EXIT_USAGE;
	}
	memset(&o, 0, sizeof(o));
	o.cmd = c->name;
	rc = parse_options(c, argc - 1, argv + 1, &o);
	if (rc >= 0)
		return rc;
	if (sodium_init() < 0) {
		sim_warn("cannot initialise libsodium");
		return SIM_EXIT_FAIL;
	}
	return c->fn(&o);
}
