/*
 * quickcheck: record and test the stat data behind a branch tip; see
 * quickcheck.h.  The record is text that is never parsed: the test builds
 * the same text from a fresh walk and compares bytes, so the two cannot
 * drift apart.
 */
#include "quickcheck.h"
#include "err.h"
#include "fsys.h"
#include "log.h"
#include "util.h"
#include "walk.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define QUICKCHECK_HEADER "msgw-quickcheck 1"

char *quickcheck_path(const char *state_dir, const char *gateway)
{
	return xasprintf("%s/quickcheck-%s", state_dir, gateway);
}

/* The record's text.  Only what decides the manifest (type, mode, owner
 * ids, size, path; a link's target) and, for files, the stat data that
 * vouches for their content. */
static void format_record(struct buf *b, const char *location, const char *tip,
			  const struct manifest *m, size_t size_hint)
{
	size_t i;

	buf_init(b);
	buf_reserve(b, size_hint);
	buf_adds(b, QUICKCHECK_HEADER "\nlocation ");
	manifest_encode_path_into(b, location);
	buf_addf(b, "\ntip %s\nentries %zu\n", tip, m->n);
	for (i = 0; i < m->n; i++) {
		const struct manifest_entry *e = &m->e[i];
		size_t plen = strlen(e->path), llen = e->link ? strlen(e->link) : 0;
		char *p;

		/* "%c %04o %u %u %llu %s" by hand, straight into the buffer:
		 * this runs for every entry of every scheduled snapshot.  Room
		 * for the escaped path and link, nine numbers of at most 22
		 * digits with a sign and a separator each, the last one's copy
		 * of PUT_DIGITS_MAX bytes, and the rest. */
		buf_reserve(b, 3 * (plen + llen) + 12 * (PUT_DIGITS_MAX + 2));
		p = b->data + b->len;
		*p++ = e->type;
		*p++ = ' ';
		p = put_digits(p, e->mode, 8, 4);
		*p++ = ' ';
		p = put_digits(p, e->uid, 10, 1);
		*p++ = ' ';
		p = put_digits(p, e->gid, 10, 1);
		*p++ = ' ';
		p = put_digits(p, e->size, 10, 1);
		*p++ = ' ';
		p = manifest_encode_path_to(p, e->path);
		if (e->type == 'f') { /* " mtime.ns ctime.ns inode" */
			*p++ = ' ';
			p = put_i64(p, e->mtime);
			*p++ = '.';
			p = put_digits(p, (uint64_t)e->mtime_nsec, 10, 9);
			*p++ = ' ';
			p = put_i64(p, e->ctime);
			*p++ = '.';
			p = put_digits(p, (uint64_t)e->ctime_nsec, 10, 9);
			*p++ = ' ';
			p = put_digits(p, e->ino, 10, 1);
		}
		if (e->type == 'l') {
			memcpy(p, " -> ", 4);
			p = manifest_encode_path_to(p + 4, e->link ? e->link : "");
		}
		*p++ = '\n';
		b->len = (size_t)(p - b->data);
	}
	b->data[b->len] = '\0';
	buf_adds(b, "end\n"); /* a truncated record never matches */
}

void quickcheck_record(const char *path, const char *location, const char *tip,
		       const struct manifest *m, int64_t walk_time)
{
	char *tmp;
	struct buf b;
	size_t i;
	int fd, rc = 0;

	for (i = 0; i < m->n; i++) {
		const struct manifest_entry *e = &m->e[i];

		if (e->type == 'f' && (e->mtime > walk_time - 2 || e->ctime > walk_time - 2)) {
			if (unlink(path) < 0 && errno != ENOENT)
				log_warn("cannot remove '%s': %s", path, strerror(errno));
			log_debug("no quick check record: '%s' changed less than 2 s ago", e->path);
			return;
		}
	}
	format_record(&b, location, tip, m, m->n * 128);
	tmp = xasprintf("%s.tmp", path);
	/* no fsync: a record lost or emptied by a crash only costs a full run */
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0 || write(fd, b.data, b.len) != (ssize_t)b.len)
		rc = errno ? errno : EIO;
	if (fd >= 0 && close(fd) < 0 && !rc)
		rc = errno;
	if (!rc && rename(tmp, path) < 0)
		rc = errno;
	if (rc) {
		log_warn("cannot write '%s': %s", path, strerror(rc));
		unlink(tmp);
		unlink(path);
	}
	free(tmp);
	buf_release(&b);
}

/*
 * A plain ref read from the repository's files, as git resolves it (the
 * loose file, else its line in packed-refs): quickcheck lives in the
 * agent's front program, which does not link libgit2.  Goes with that
 * program (issue 15).
 */
static int refs_read(char out[REPO_ID_LEN], const char *repo_path, const char *refname)
{
	char *path = xasprintf("%s/%s", repo_path, refname);
	char *text = NULL, *want = NULL, *p;
	size_t len = 0;
	int rc;

	rc = read_whole_file(&text, &len, path);
	free(path);
	if (rc == 0) {
		rc = len == REPO_ID_LEN && text[REPO_ID_LEN - 1] == '\n' &&
			     hex_is_lower(text, REPO_ID_LEN - 1)
			 ? 0
			 : MSGW_ERR;
		if (!rc)
			memcpy(out, text, REPO_ID_LEN - 1);
		goto done;
	}
	if (rc != ENOENT) {
		rc = MSGW_ERR;
		goto done;
	}
	/* no loose ref: "<id> <refname>" in packed-refs */
	path = xasprintf("%s/packed-refs", repo_path);
	rc = read_whole_file(&text, &len, path);
	free(path);
	if (rc) {
		rc = rc == ENOENT ? MSGW_ENOTFOUND : MSGW_ERR;
		goto done;
	}
	want = xasprintf(" %s\n", refname);
	rc = strstr(text, want) ? MSGW_ERR : MSGW_ENOTFOUND; /* named, but oddly */
	for (p = text; *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : p + strlen(p)) {
		if (strlen(p) > REPO_ID_LEN - 1 && hex_is_lower(p, REPO_ID_LEN - 1) &&
		    strncmp(p + REPO_ID_LEN - 1, want, strlen(want)) == 0) {
			memcpy(out, p, REPO_ID_LEN - 1);
			rc = 0;
			break;
		}
	}
done:
	if (!rc)
		out[REPO_ID_LEN - 1] = '\0';
	free(want);
	free(text);
	return rc;
}

int quickcheck_read_tip(char out[REPO_ID_LEN], const char *repo_path, const char *branch)
{
	char *ref = xasprintf("refs/heads/%s", branch);
	int rc = refs_read(out, repo_path, ref);

	free(ref);
	return rc ? MSGW_ENOTFOUND : 0;
}

int quickcheck_unchanged(char tip_out[REPO_ID_LEN], const char **why, const char *path,
			 const char *repo_path, const char *branch, const char *location,
			 const struct walk_rules *rules)
{
	struct walk_rules ids;
	struct fsys *fs = NULL;
	struct manifest m;
	struct buf now;
	char *rec = NULL;
	size_t len = 0;
	int same;

	if (location[0] != '/') {
		*why = "the location is not local";
		return 0;
	}
	if (read_whole_file(&rec, &len, path)) {
		*why = "no record of the last run";
		return 0;
	}
	if (quickcheck_read_tip(tip_out, repo_path, branch)) {
		free(rec);
		*why = "the branch tip is not a plain ref";
		return 0;
	}
	fsys_open_local(&fs, location);
	ids = *rules;
	ids.ids_only = true; /* the record holds owner ids, not names */
	if (walk_location(&m, fs, &ids, NULL)) {
		fsys_free(fs);
		free(rec);
		err_clear();
		*why = "the walk failed";
		return 0;
	}
	format_record(&now, location, tip_out, &m, len);
	same = now.len == len && memcmp(now.data, rec, len) == 0;
	*why = same ? "same tip and stat data" : "the tip or the files differ from the record";
	buf_release(&now);
	manifest_release(&m);
	fsys_free(fs);
	free(rec);
	return same;
}
