/*
 * prune: the retention policy (pure, table-tested in tests/unit/test_prune.c)
 * and reading one branch's snapshots for it.  The policy follows restic's
 * "forget": the snapshots are visited newest first, and each keep-* rule
 * keeps a snapshot when it opens a bucket (an hour, day, ISO week or month;
 * for keep-last, every snapshot is its own bucket) that the rule has not
 * seen yet, while the rule has count left.  Rewriting the repository is
 * the repo module's business (common/repo/rewrite.c); printing is the front end's.
 */
#include "prune.h"
#include "err.h"
#include "log.h"
#include "snapshot.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

bool prune_policy_set(const struct config_retention *ret)
{
	return ret->keep_last >= 0 || ret->keep_hourly >= 0 || ret->keep_daily >= 0 ||
	       ret->keep_weekly >= 0 || ret->keep_monthly >= 0;
}

static int64_t floor_div(int64_t a, int64_t b)
{
	int64_t q = a / b;

	if (a % b != 0 && (a < 0) != (b < 0))
		q--;
	return q;
}

int64_t prune_hour(int64_t t)
{
	return floor_div(t, 3600);
}

int64_t prune_day(int64_t t)
{
	return floor_div(t, 86400);
}

/* 1970-01-01 was a Thursday, so the first Monday is day 4: counting weeks
 * from there numbers ISO weeks continuously, whatever the year. */
int64_t prune_week(int64_t t)
{
	return floor_div(prune_day(t) - 4, 7);
}

/* Civil month from days since the epoch (Howard Hinnant's algorithm), so
 * no gmtime range limit applies. */
int64_t prune_month(int64_t t)
{
	int64_t z = prune_day(t) + 719468;
	int64_t era = floor_div(z, 146097);
	int64_t doe = z - era * 146097;
	int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	int64_t mp = (5 * doy + 2) / 153;
	int64_t m = mp < 10 ? mp + 3 : mp - 9; /* 1..12 */
	int64_t y = yoe + era * 400 + (m <= 2);

	return y * 12 + (m - 1);
}

static const struct {
	unsigned bit;
	const char *name;
} reason_names[] = {
    {PRUNE_TIP, "tip"},		{PRUNE_TAGGED, "tagged"},
    {PRUNE_LAST, "last"},	{PRUNE_HOURLY, "hourly"},
    {PRUNE_DAILY, "daily"},	{PRUNE_WEEKLY, "weekly"},
    {PRUNE_MONTHLY, "monthly"}, {PRUNE_PRE_RESTORE, "pre-restore"},
};

const char *prune_reason_name(unsigned bit)
{
	size_t i;

	for (i = 0; i < sizeof(reason_names) / sizeof(reason_names[0]); i++)
		if (reason_names[i].bit == bit)
			return reason_names[i].name;
	return "?";
}

void prune_reasons_format(char *buf, size_t len, unsigned reasons)
{
	size_t i, used = 0;

	if (len)
		buf[0] = '\0';
	for (i = 0; i < sizeof(reason_names) / sizeof(reason_names[0]); i++) {
		int w;

		if (!(reasons & reason_names[i].bit) || used >= len)
			continue;
		w = snprintf(buf + used, len - used, "%s%s", used ? ", " : "",
			     reason_names[i].name);
		used += w > 0 ? (size_t)w : 0;
	}
}

/* Newest first by time; equal times keep branch order. */
static const struct prune_item *sort_base;

static int cmp_newest(const void *a, const void *b)
{
	size_t i = *(const size_t *)a, j = *(const size_t *)b;
	int64_t ti = sort_base[i].time, tj = sort_base[j].time;

	if (ti != tj)
		return ti > tj ? -1 : 1;
	return i < j ? -1 : i > j;
}

struct rule {
	int count;
	unsigned bit;
	int64_t (*bucket)(int64_t t); /* NULL: every snapshot is its own bucket */
	bool seen;
	int64_t last;
};

static void apply_rule(struct rule *rl, struct prune_item *it, size_t idx)
{
	int64_t key = rl->bucket ? rl->bucket(it->time) : (int64_t)idx;

	if (rl->count <= 0 || (rl->seen && key == rl->last))
		return;
	rl->seen = true;
	rl->last = key;
	rl->count--;
	it->reasons |= rl->bit;
}

int prune_decide(struct prune_item *items, size_t n, const struct config_retention *ret,
		 int64_t now)
{
	struct rule rules[] = {
	    {ret->keep_last, PRUNE_LAST, NULL, false, 0},
	    {ret->keep_hourly, PRUNE_HOURLY, prune_hour, false, 0},
	    {ret->keep_daily, PRUNE_DAILY, prune_day, false, 0},
	    {ret->keep_weekly, PRUNE_WEEKLY, prune_week, false, 0},
	    {ret->keep_monthly, PRUNE_MONTHLY, prune_month, false, 0},
	};
	int64_t pre_restore_age = (int64_t)ret->keep_pre_restore_days * 86400;
	size_t *order, k, r;

	for (k = 0; k < n; k++) {
		items[k].keep = true;
		items[k].reasons = 0;
	}
	if (!prune_policy_set(ret))
		return err_set(MSGW_ECONFIG,
			       "retention: no keep-last, keep-hourly, keep-daily, keep-weekly or "
			       "keep-monthly is set; refusing to prune (every snapshot is kept)");
	order = xcalloc(n ? n : 1, sizeof(*order));
	for (k = 0; k < n; k++)
		order[k] = k;
	sort_base = items;
	qsort(order, n, sizeof(*order), cmp_newest);
	sort_base = NULL;
	for (k = 0; k < n; k++) {
		struct prune_item *it = &items[order[k]];

		if (order[k] == 0)
			it->reasons |= PRUNE_TIP;
		if (it->tagged)
			it->reasons |= PRUNE_TAGGED;
		if (ret->keep_pre_restore_days > 0 && strcmp(it->kind, "pre-restore") == 0 &&
		    now - it->time <= pre_restore_age)
			it->reasons |= PRUNE_PRE_RESTORE;
		for (r = 0; r < sizeof(rules) / sizeof(rules[0]); r++)
			apply_rule(&rules[r], it, order[k]);
		it->keep = it->reasons != 0;
	}
	free(order);
	return 0;
}

/* Fill one item from the snapshot's meta, falling back to the commit. */
static int load_item(struct prune_item *it, struct repo *r, const char *id)
{
	struct snapshot_meta meta = {0};
	struct repo_commit_info ci;
	const char *created, *kind;
	char *text = NULL;
	size_t len = 0;
	int rc = 0;

	snprintf(it->id, sizeof(it->id), "%s", id);
	if (repo_read(&text, &len, r, id, "meta") == 0 &&
	    snapshot_meta_parse(&meta, text, len) == 0) {
		created = snapshot_meta_get(&meta, "created");
		kind = snapshot_meta_get(&meta, "kind");
		snprintf(it->kind, sizeof(it->kind), "%s", kind ? kind : "");
		if (created && time_parse_rfc3339(&it->time, created) == 0)
			goto cleanup;
	}
	log_info("snapshot %.12s: no valid created time in meta, using the commit time", id);
	rc = repo_commit_info(&ci, r, id);
	if (!rc) {
		it->time = ci.time;
		repo_commit_info_release(&ci);
	}
cleanup:
	snapshot_meta_release(&meta);
	free(text);
	return rc;
}

static int cmp_id(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int prune_plan_branch(struct prune_branch *out, struct repo *r, const char *branch,
		      const struct config_retention *ret, int64_t now)
{
	char **ids = NULL, **tagged = NULL;
	size_t n = 0, ntagged = 0, i;
	int rc;

	memset(out, 0, sizeof(*out));
	out->name = xstrdup(branch);
	rc = repo_log(&ids, &n, r, branch, 0);
	if (!rc)
		rc = repo_tagged_commits(&tagged, &ntagged, r);
	if (rc)
		goto cleanup;
	out->items = xcalloc(n ? n : 1, sizeof(*out->items));
	out->n = n;
	if (n)
		snprintf(out->tip, sizeof(out->tip), "%s", ids[0]);
	for (i = 0; !rc && i < n; i++) {
		char *key = ids[i];

		rc = load_item(&out->items[i], r, ids[i]);
		out->items[i].tagged =
		    ntagged && bsearch(&key, tagged, ntagged, sizeof(char *), cmp_id) != NULL;
	}
	if (!rc)
		rc = prune_decide(out->items, n, ret, now);
	for (i = 0; !rc && i < n; i++) {
		if (out->items[i].keep)
			out->kept++;
		else
			out->dropped++;
	}
cleanup:
	repo_names_free(ids, n);
	repo_names_free(tagged, ntagged);
	return rc;
}

void prune_branch_release(struct prune_branch *b)
{
	if (!b)
		return;
	free(b->name);
	free(b->items);
	memset(b, 0, sizeof(*b));
}
