/*
 * snapref: parsing of snapshot names; see snapref.h for the forms.
 */
#include "snapref.h"
#include "err.h"
#include "util.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

bool snapref_valid_name(const char *name)
{
	size_t n = strlen(name), i;

	if (n == 0 || n > 200 || name[0] == '.' || name[0] == '-' || strstr(name, "..") ||
	    (n >= 5 && strcmp(name + n - 5, ".lock") == 0))
		return false;
	for (i = 0; i < n; i++)
		if (!isalnum((unsigned char)name[i]) && !strchr("._-", name[i]))
			return false;
	return true;
}

static bool all_hex(const char *s)
{
	size_t n = strlen(s), i;

	if (n < 7 || n > 40)
		return false;
	for (i = 0; i < n; i++)
		if (!isxdigit((unsigned char)s[i]))
			return false;
	return true;
}

int snapref_parse(struct snapref *out, const char *text)
{
	const char *tilde = strchr(text, '~'), *at = strchr(text, '@');
	size_t len = strlen(text);

	memset(out, 0, sizeof(*out));
	if (tilde && at)
		return err_set(MSGW_ECONFIG, "bad snapshot name '%s': use either ~N or @latest",
			       text);
	if (at) {
		if (strcmp(at, "@latest") != 0)
			return err_set(MSGW_ECONFIG,
				       "bad snapshot name '%s': only @latest is known", text);
		len = (size_t)(at - text);
		out->latest = out->explicit_branch = true;
	} else if (tilde) {
		char *end;
		long n;

		errno = 0;
		n = strtol(tilde + 1, &end, 10);
		if (!tilde[1] || *end || errno || n < 0 || n > 1000000 ||
		    !isdigit((unsigned char)tilde[1]))
			return err_set(MSGW_ECONFIG, "bad snapshot name '%s': ~ needs a number",
				       text);
		len = (size_t)(tilde - text);
		out->back = (int)n;
		out->explicit_branch = true;
	}
	out->name = xstrndup(text, len);
	if (!snapref_valid_name(out->name)) {
		snapref_release(out);
		return err_set(MSGW_ECONFIG, "bad snapshot name '%s'", text);
	}
	out->maybe_hex = !out->explicit_branch && all_hex(out->name);
	return 0;
}

void snapref_release(struct snapref *ref)
{
	free(ref->name);
	ref->name = NULL;
}
