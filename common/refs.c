/*
 * refs: plain refs read from the repository's files (refs.h).
 */
#include "refs.h"
#include "err.h"
#include "util.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

int refs_read(char out[REFS_ID_LEN], const char *repo_path, const char *refname)
{
	char *path = xasprintf("%s/%s", repo_path, refname);
	char *text = NULL, *want = NULL, *p;
	size_t len = 0;
	int rc;

	rc = read_whole_file(&text, &len, path);
	free(path);
	if (rc == 0) {
		rc = len == REFS_ID_LEN && text[REFS_ID_LEN - 1] == '\n' &&
			     hex_is_lower(text, REFS_ID_LEN - 1)
			 ? 0
			 : MSGW_ERR;
		if (!rc)
			memcpy(out, text, REFS_ID_LEN - 1);
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
		if (strlen(p) > REFS_ID_LEN - 1 && hex_is_lower(p, REFS_ID_LEN - 1) &&
		    strncmp(p + REFS_ID_LEN - 1, want, strlen(want)) == 0) {
			memcpy(out, p, REFS_ID_LEN - 1);
			rc = 0;
			break;
		}
	}
done:
	if (!rc)
		out[REFS_ID_LEN - 1] = '\0';
	free(want);
	free(text);
	return rc;
}
