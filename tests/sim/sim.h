/*
 * sim.h: the shared contract of msgw-sim, the MailStore Gateway simulator
 * used by every end-to-end test and the demo.  It keeps a data directory
 * shaped like the real product's (Gateway.json, Certificates/, Templates/,
 * Logs/, one mbx-<32 hex> store per mailbox) and encrypts mail for real, so
 * mail becomes undecryptable exactly when the key material in Gateway.json
 * changes.  It does not speak SMTP: delivery is a subcommand.  The console
 * port answers a one-line greeting (in clear or inside TLS), and the POP3
 * port speaks STLS, USER/PASS and STAT (net.c); retrieval is `fetch`.
 *
 * Conventions: helpers return 0 or -1 and record a message with sim_seterr;
 * the subcommand that sees -1 prints it with sim_fail.  Subcommands return
 * the process exit code: 0, 1 failure, 2 usage error, 3 "stopped".
 *
 * Adding a subcommand: write sim_cmd_<name>(const struct sim_opts *) in the
 * file of its group, declare it below, and add a row (name, function,
 * accepted options, argument counts, synopsis) to the table in main.c.
 */
#ifndef MSGW_SIM_H
#define MSGW_SIM_H

#include <stddef.h>
#include <time.h>

#include <jansson.h>
#include <sodium.h>

#define SIM_PROG	 "msgw-sim"
#define SIM_CONFIG	 "Gateway.json"
#define SIM_PASSWORD_LEN 20
#define SIM_ID_LEN	 36 /* "mbx-" and 32 hex digits */
#define SIM_UUID_LEN	 36 /* 8-4-4-4-12 */
#define SIM_ENC_SK_LEN	 (crypto_box_SECRETKEYBYTES + crypto_secretbox_MACBYTES)

#define SIM_EXIT_OK	 0
#define SIM_EXIT_FAIL	 1
#define SIM_EXIT_USAGE	 2
#define SIM_EXIT_STOPPED 3

#define SIM_PRINTF(f, a) __attribute__((format(printf, f, a)))

/* The parsed command line; each field notes the flag that sets it. */
struct sim_opts {
	const char *cmd;	  /* the subcommand name */
	char **args;		  /* positional arguments */
	int nargs;		  /* their number */
	const char *console_port; /* --console-port (init) */
	const char *pop3_port;	  /* --pop3-port (init) */
	const char *description;  /* --description (add-mailbox) */
	const char *domain;	  /* --domain (init) */
	const char *listen;	  /* --listen (start) */
	const char *mailboxes;	  /* --mailboxes (init) */
	const char *mode;	  /* --mode (init) */
	const char *seed;	  /* --seed (init) */
	const char *timeout;	  /* --timeout (stop) */
	const char *version;	  /* --version (init) */
};

/* main.c: print "msgw-sim: <message>" and the command's synopsis to stderr;
 * returns SIM_EXIT_USAGE. */
int sim_usage_error(const struct sim_opts *o, const char *fmt, ...) SIM_PRINTF(2, 3);

/* util.c: errors, memory, files, time. */
void sim_seterr(const char *fmt, ...) SIM_PRINTF(1, 2);
const char *sim_lasterr(void);
int sim_fail(void);					  /* prints the last error, returns 1 */
void sim_warn(const char *fmt, ...) SIM_PRINTF(1, 2);	  /* "msgw-sim: ..." on stderr */
char *sim_strdupf(const char *fmt, ...) SIM_PRINTF(1, 2); /* exits on out-of-memory */
void *sim_xmalloc(size_t n);
int sim_parse_long(const char *s, long min, long max, long *out);
char *sim_clean_dir(const char *dir); /* trailing slashes stripped; caller frees */
int sim_read_file(const char *path, char **out, size_t *len_out);
int sim_write_atomic(const char *path, const void *data, size_t len, unsigned mode);
int sim_mkdirs(const char *path);
int sim_rmtree(const char *path);
int sim_list_messages(const char *store, char ***names_out, size_t *n_out);
void sim_free_list(char **names, size_t n);
int sim_count_messages(const char *store, size_t *out);
time_t sim_now(void); /* SOURCE_DATE_EPOCH, a fixed date when seeded, or now */
void sim_rfc3339(time_t t, char buf[32]);
int sim_log(const char *dir, const char *fmt, ...) SIM_PRINTF(2, 3);

/* crypto.c: the random source (seedable) and mailbox key material. */
struct sim_keys {
	unsigned char pk[crypto_box_PUBLICKEYBYTES];
	unsigned char esk[SIM_ENC_SK_LEN]; /* secretbox of the secret key */
	unsigned char salt[crypto_pwhash_SALTBYTES];
	unsigned char nonce[crypto_secretbox_NONCEBYTES];
};

void sim_rng_seed(const char *seed); /* NULL: the system's random source */
int sim_rng_seeded(void);
void sim_rng_bytes(void *buf, size_t len);
void sim_random_hex(char *out, size_t nbytes); /* out holds 2 * nbytes + 1 */
void sim_uuid4(char out[SIM_UUID_LEN + 1]);
void sim_password(char out[SIM_PASSWORD_LEN + 1]);
char *sim_b64(const unsigned char *bin, size_t len); /* caller frees */
int sim_keys_generate(struct sim_keys *out, const char *password);
int sim_keys_unlock(const struct sim_keys *k, const char *password,
		    unsigned char sk_out[crypto_box_SECRETKEYBYTES]);
int sim_keys_to_json(json_t *mbx, const struct sim_keys *k);
int sim_keys_from_json(struct sim_keys *out, const json_t *mbx);

/* config.c: Gateway.json. */
#define SIM_NPORTS 5
extern const char *const sim_port_names[SIM_NPORTS]; /* the required ports.* */

struct sim_gw {
	char *dir;    /* data directory, trailing slashes stripped */
	char *path;   /* dir/Gateway.json */
	json_t *root; /* the whole document */
};

int sim_gw_load(struct sim_gw *gw, const char *dir); /* reads and validates */
int sim_gw_save(const struct sim_gw *gw);
void sim_gw_release(struct sim_gw *gw);
json_t *sim_gw_mailbox(const struct sim_gw *gw, const char *id, size_t *index_out);
const char *sim_gw_str(const struct sim_gw *gw, const char *key);
const char *sim_mbx_str(const json_t *mbx, const char *key);
int sim_valid_id(const char *id);
json_t *sim_mailbox_new(const char *description, char password_out[SIM_PASSWORD_LEN + 1]);
int sim_mailbox_rekey(json_t *mbx, char password_out[SIM_PASSWORD_LEN + 1]);
char *sim_store_path(const struct sim_gw *gw, const char *id); /* caller frees */

/* net.c: the service's console (TLS or clear) and POP3 (STLS) answers. */
struct ssl_ctx_st;
struct ssl_ctx_st *sim_tls_new(void); /* a self-signed certificate, in memory */
void sim_console_answer(int lfd, const char *greeting, struct ssl_ctx_st *ctx);
void sim_pop3_answer(int lfd, const struct sim_gw *gw, struct ssl_ctx_st *ctx);

/* The subcommands (init.c, service.c, mail.c, admin.c). */
int sim_cmd_init(const struct sim_opts *o);
int sim_cmd_start(const struct sim_opts *o);
int sim_cmd_stop(const struct sim_opts *o);
int sim_cmd_status(const struct sim_opts *o);
int sim_cmd_deliver(const struct sim_opts *o);
int sim_cmd_fetch(const struct sim_opts *o);
int sim_cmd_add_mailbox(const struct sim_opts *o);
int sim_cmd_reset_password(const struct sim_opts *o);
int sim_cmd_suspend(const struct sim_opts *o);
int sim_cmd_activate(const struct sim_opts *o);
int sim_cmd_delete(const struct sim_opts *o);
int sim_cmd_set(const struct sim_opts *o);
int sim_cmd_list(const struct sim_opts *o);

#endif
