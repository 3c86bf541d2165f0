/*
 * progress: "\rlabel: done/total (pct%)" redrawn at most every 100 ms.
 */
#include "progress.h"
#include "util.h"

#include <stdio.h>
#include <string.h>

static bool enabled, active;
static char label[64];
static uint64_t total;
static int64_t last_ms;

void progress_enable(bool on)
{
	enabled = on;
}

void progress_begin(const char *what, uint64_t units)
{
	if (!enabled)
		return;
	snprintf(label, sizeof(label), "%s", what);
	total = units;
	last_ms = 0;
	active = true;
}

void progress_update(uint64_t done)
{
	int64_t now;

	if (!active)
		return;
	now = time_now_ms();
	if (now - last_ms < 100 && done != total)
		return;
	last_ms = now;
	if (total)
		fprintf(stderr, "\r%s: %llu/%llu (%llu%%)\033[K", label, (unsigned long long)done,
			(unsigned long long)total, (unsigned long long)(done * 100 / total));
	else
		fprintf(stderr, "\r%s: %llu\033[K", label, (unsigned long long)done);
}

void progress_end(void)
{
	if (!active)
		return;
	fputs("\r\033[K", stderr);
	active = false;
}
