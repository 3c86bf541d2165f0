/*
 * fuzz_plan: the check of a snapshot's archive against its manifest and
 * the extraction guard (plan_check_archive, and through it
 * plan_check_entry_name), as extract and apply run them on a snapshot from
 * any repository.  Input: a 4-byte big-endian length n, n bytes of
 * manifest text, then the config.tar.zst.  What passes is handed to
 * callbacks that only count, as extract's would write.  The guard has
 * small limits and one mailbox-store pattern, so that those refusals and
 * the link resolution at the end of the pass are reached too.
 */
#include "fuzz.h"

#include "archive.h"
#include "manifest.h"
#include "plan.h"
#include "snapshot.h"

#include <stdio.h>

struct count {
	size_t entries, bytes;
};

static int begin(const struct manifest_entry *e, void *ctx)
{
	struct count *c = ctx;

	c->entries += e->path[0] != '\0';
	return 0;
}

static int data_cb(const void *buf, size_t len, void *ctx)
{
	struct count *c = ctx;

	(void)buf;
	c->bytes += len;
	return 0;
}

static int end(const struct manifest_entry *e, void *ctx)
{
	(void)e, (void)ctx;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct archive_snapshot_reader *r = NULL;
	struct snapshot s;
	struct count c = {0, 0};
	struct archive_snapshot_visit then = {0};
	static char *const stores[] = {"Stores/*", NULL};
	struct plan_guard g = {.max_file_size = 1 << 20, .max_total_size = 4 << 20};
	size_t n;

	if (size < 4)
		return 0;
	n = (size_t)data[0] << 24 | (size_t)data[1] << 16 | (size_t)data[2] << 8 | data[3];
	if (n > size - 4)
		n = size - 4;
	memset(&s, 0, sizeof(s));
	snprintf(s.id, sizeof(s.id), "fuzz");
	if (manifest_parse(&s.manifest, (const char *)data + 4, n))
		return 0;
	s.archive = (const char *)data + 4 + n;
	s.archive_len = size - 4 - n;
	then.begin = begin, then.data = data_cb, then.end = end, then.ctx = &c;
	g.stores[0] = stores;
	if (archive_snapshot_open(&r, s.archive, s.archive_len) == 0)
		(void)plan_check_archive(&s, &g, r, &then);
	archive_snapshot_free(r);
	plan_guard_release(&g);
	manifest_release(&s.manifest);
	return 0;
}
