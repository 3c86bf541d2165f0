/*
 * gateway: what MailStore Gateway's data means for safety: the mailbox
 * inventory of a target (each store folder with its message count and
 * bytes), the mailbox records in configuration files with their key
 * fingerprints, and the findings of the safety analysis.
 *
 * All product-specific rules live here (record extraction, the list of
 * volatile fields, what counts as a message file), so a real installation's
 * format can be adapted without touching the restore code.
 */
#ifndef MSGW_GATEWAY_H
#define MSGW_GATEWAY_H

#include "fsys.h"
#include "sha256.h"
#include "walk.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One mailbox store folder on the target. */
struct gateway_store {
	char *id;	 /* the folder name, "mbx-<32 hex>"; for a store found by a
			  * mailbox-store pattern only, its path (ids of its own:
			  * the configuration's records never name it) */
	bool by_pattern; /* found by a mailbox-store pattern, not by its name */
	char *path;	 /* relative to the location root */
	size_t messages; /* regular files below it */
	uint64_t bytes;
};

struct gateway_inventory {
	struct gateway_store *v;
	size_t n;
};

/* Find every mailbox store under the location (at any depth, by name or by
 * the mailbox-store patterns in rules) and count its files and bytes. */
int gateway_inventory_read(struct gateway_inventory *out, struct fsys *fs,
			   const struct walk_rules *rules);
const struct gateway_store *gateway_inventory_find(const struct gateway_inventory *inv,
						   const char *id);
void gateway_inventory_release(struct gateway_inventory *inv);

/* A mailbox as the configuration describes it. */
struct gateway_record {
	char *id;   /* "mbx-<32 hex>" */
	char *file; /* configuration file it was found in */
	bool json;  /* false: only seen in a non-JSON file (presence only) */
	unsigned char fingerprint[SHA256_LEN]; /* key material digest, when json */
};

struct gateway_records {
	struct gateway_record *v;
	size_t n;
	char *mode;    /* top-level "mode" of a JSON file ("server", "proxy"), or NULL */
	char *version; /* top-level "version", or NULL */
	char **notes;  /* things the caller should tell the admin */
	size_t nnotes;
};

void gateway_records_init(struct gateway_records *r);
/*
 * Add the mailbox records of one configuration file's contents.  JSON files
 * (the content parses as JSON) give one record per mailbox id: the innermost
 * object with a string value or key equal to the id; its fingerprint is the
 * sha256 of its canonical form without the volatile fields.  Other files
 * give presence-only records for each id that appears in the text, and a
 * note saying so.  A file that looks like JSON (starts with '{' or '[') but
 * does not parse fails with MSGW_ECORRUPT naming the file and line.
 */
int gateway_records_add_file(struct gateway_records *r, const char *file, const char *data,
			     size_t len);
/*
 * Add presence-only records for every mailbox id that appears in data,
 * whatever the format, with a note naming the file and why (used when a
 * JSON file does not parse, so a broken configuration is still analysed).
 */
void gateway_records_add_presence(struct gateway_records *r, const char *file, const char *data,
				  size_t len, const char *why);
const struct gateway_record *gateway_records_find(const struct gateway_records *r, const char *id);
void gateway_records_release(struct gateway_records *r);

/*
 * Whether two versions of one configuration file differ in anything an
 * admin sets: JSON files are compared without their runtime fields (the
 * volatile fields other than description, status, displayName, comment and
 * notes: counters and points in time the gateway updates itself); other
 * files byte for byte.  Used by target-diverged.
 */
bool gateway_config_differs(const char *a, size_t alen, const char *b, size_t blen);

/* The volatile fields, ignored by fingerprints (NULL-terminated). */
extern const char *const gateway_volatile_fields[];

/* One finding of the safety analysis. */
struct finding {
	char *code;    /* "mailbox-removed", "key-changed", "target-diverged", ... */
	char *mailbox; /* or NULL */
	size_t messages;
	uint64_t bytes;
	char *what;    /* what would happen, one sentence */
	char *instead; /* what to do instead, one sentence */
	bool forced;   /* accepted with --force */
};

struct findings {
	struct finding *v;
	size_t n;
};

void findings_init(struct findings *f);
void findings_add(struct findings *f, const char *code, const char *mailbox, size_t messages,
		  uint64_t bytes, const char *what, const char *instead);
void findings_release(struct findings *f);

/*
 * The gateway-specific findings for restoring a snapshot (its records) onto
 * a target (its live records and store inventory): mailbox-removed,
 * key-changed, proxy-mode, version-mismatch.  target-diverged is the
 * restore plan's own (it needs the repository).
 */
void gateway_analyse(struct findings *out, const struct gateway_records *snap,
		     const struct gateway_records *target, const struct gateway_inventory *inv);

/* The codes --force accepts. */
extern const char *const gateway_finding_codes[];
bool gateway_is_finding_code(const char *code);

#endif
