/*
 * s3_conf.c - the remotes file and the AWS tools' shared files.
 *
 * One INI reader serves both (s3_ini_parse(): the subset of Python's
 * configparser that the AWS tools' files use).  A file is read whole into
 * memory (at most FILE_MAX bytes), parsed line by line with a callback,
 * and freed; a copy that held secrets is wiped before it is freed.
 *
 * The remotes file is rewritten whole on every change, under a lock file
 * that is also the new content (PATH.lock, created with O_EXCL, synced,
 * renamed over PATH, then the directory synced).  A command that dies
 * half-way leaves PATH.lock behind and PATH intact; the next change
 * refuses to run until the user removes the lock, as git does.
 *
 * Nothing here keeps state, and the environment is only read, so every
 * function may run in any thread.
 */
#include "replicator/s3_conf.h"
#include "replicator/rules.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

/* The largest configuration file read. */
#define FILE_MAX (1 << 20)

static int fail(char *err, size_t errlen, int ret, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int fail(char *err, size_t errlen, int ret, const char *fmt, ...)
{
	va_list ap;

	if (err && errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return ret;
}

/* Free @s after wiping it: for strings that may hold a secret. */
static void free_secret(char *s)
{
	if (s) {
		explicit_bzero(s, strlen(s));
		free(s);
	}
}

/* Replace *@slot by a copy of @v (NULL stays NULL).  -ENOMEM. */
static int set_str(char **slot, const char *v, int secret)
{
	char *c = NULL;

	if (v) {
		c = strdup(v);
		if (!c)
			return -ENOMEM;
	}
	if (secret)
		free_secret(*slot);
	else
		free(*slot);
	*slot = c;
	return 0;
}

/* ---- INI files ------------------------------------------------------ */

static int is_blank(char c)
{
	return c == ' ' || c == '\t';
}

/* Trim blanks at both ends of @s in place; returns the new start. */
static char *trim(char *s)
{
	size_t n;

	while (is_blank(*s))
		s++;
	n = strlen(s);
	while (n && (is_blank(s[n - 1]) || s[n - 1] == '\r'))
		s[--n] = '\0';
	return s;
}

int s3_ini_parse(const char *text, size_t len, s3_ini_cb cb, void *arg,
		 int *bad_line)
{
	char *buf, *section, *parent, *line, *p, *key, *val, *sep, *full;
	const char *end = text + len, *nl;
	size_t n, keylen;
	int lineno = 0, indented, ret = 0;

	/* One buffer holds the line, the current section and the parent
	 * key: none is longer than the text. */
	buf = malloc(3 * (len + 1) + 2);
	if (!buf)
		return -ENOMEM;
	section = buf;
	parent = buf + len + 1;
	line = buf + 2 * (len + 1);
	full = NULL;
	section[0] = '\0';
	parent[0] = '\0';
	while (text < end) {
		nl = memchr(text, '\n', end - text);
		n = nl ? (size_t)(nl - text) : (size_t)(end - text);
		memcpy(line, text, n);
		line[n] = '\0';
		text += n + (nl ? 1 : 0);
		lineno++;
		if (memchr(line, '\0', n)) {
			ret = -EINVAL;
			break;
		}
		indented = is_blank(line[0]);
		p = trim(line);
		if (!*p || *p == '#' || *p == ';')
			continue;
		if (!indented && *p == '[') {
			n = strlen(p);
			if (n < 2 || p[n - 1] != ']') {
				ret = -EINVAL;
				break;
			}
			p[n - 1] = '\0';
			memcpy(section, trim(p + 1), strlen(trim(p + 1)) + 1);
			parent[0] = '\0';
			ret = cb(arg, section, NULL, NULL, lineno);
			if (ret)
				break;
			continue;
		}
		sep = strpbrk(p, "=:");
		if (!sep || (indented && !parent[0])) {
			ret = -EINVAL;
			break;
		}
		*sep = '\0';
		key = trim(p);
		val = trim(sep + 1);
		if (!*key) {
			ret = -EINVAL;
			break;
		}
		for (p = key; *p; p++)
			*p = (char)tolower((unsigned char)*p);
		if (indented) {
			keylen = strlen(parent) + 1 + strlen(key) + 1;
			full = malloc(keylen);
			if (!full) {
				ret = -ENOMEM;
				break;
			}
			snprintf(full, keylen, "%s.%s", parent, key);
			ret = cb(arg, section, full, val, lineno);
			free(full);
			full = NULL;
		} else {
			memcpy(parent, key, strlen(key) + 1);
			ret = cb(arg, section, key, val, lineno);
		}
		if (ret)
			break;
	}
	if (ret == -EINVAL && bad_line)
		*bad_line = lineno;
	/* The buffer held lines of a file that may have secrets. */
	explicit_bzero(buf, 3 * (len + 1) + 2);
	free(buf);
	return ret;
}

/*
 * Read @path whole into a NUL-terminated *@out (the caller frees it with
 * free_secret(): it may hold keys).  Any readable file will do (/dev/null
 * is an empty configuration, as for the AWS tools).  -ENOENT when it does
 * not exist, -EFBIG past FILE_MAX, another negative errno.
 */
static int read_file(const char *path, char **out, size_t *lenp)
{
	size_t len = 0, cap = 4096;
	char *buf, *grown;
	ssize_t n;
	int fd, ret = 0;

	*out = NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	buf = malloc(cap);
	if (!buf) {
		close(fd);
		return -ENOMEM;
	}
	for (;;) {
		if (len + 1 == cap) {
			if (cap > FILE_MAX) {
				ret = -EFBIG;
				break;
			}
			grown = malloc(cap * 2);
			if (!grown) {
				ret = -ENOMEM;
				break;
			}
			/* Not realloc(): the old buffer is wiped. */
			memcpy(grown, buf, len);
			explicit_bzero(buf, cap);
			free(buf);
			buf = grown;
			cap *= 2;
		}
		n = read(fd, buf + len, cap - 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			ret = -errno;
			break;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	if (ret) {
		explicit_bzero(buf, cap);
		free(buf);
		return ret;
	}
	buf[len] = '\0';
	*out = buf;
	*lenp = len;
	return 0;
}

/* ---- paths ---------------------------------------------------------- */

/* The user's home directory into @buf. */
static int home_dir(char *buf, size_t size)
{
	const char *h = getenv("HOME");
	struct passwd pw, *res = NULL;
	char tmp[4096];

	if (!h || !*h) {
		if (getpwuid_r(getuid(), &pw, tmp, sizeof(tmp), &res) || !res ||
		    !res->pw_dir)
			return -ENOENT;
		h = res->pw_dir;
	}
	if ((size_t)snprintf(buf, size, "%s", h) >= size)
		return -ENAMETOOLONG;
	return 0;
}

int s3_config_dir(char *buf, size_t size)
{
	const char *e = getenv("REPLICAFS_CONFIG_DIR");
	char home[PATH_MAX];
	int ret, n;

	if (e && *e) {
		n = snprintf(buf, size, "%s", e);
	} else if ((e = getenv("XDG_CONFIG_HOME")) && *e == '/') {
		n = snprintf(buf, size, "%s/replicafs", e);
	} else {
		ret = home_dir(home, sizeof(home));
		if (ret)
			return ret;
		n = snprintf(buf, size, "%s/.config/replicafs", home);
	}
	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

int s3_remotes_path(char *buf, size_t size)
{
	char dir[PATH_MAX];
	int ret = s3_config_dir(dir, sizeof(dir));

	if (ret)
		return ret;
	if ((size_t)snprintf(buf, size, "%s/remotes", dir) >= size)
		return -ENAMETOOLONG;
	return 0;
}

/* @path from the environment variable @var (a leading "~/" is the home
 * directory, as the AWS tools expand it), else HOME/@dflt. */
static void aws_file(const char *var, const char *dflt, char *buf,
		     size_t size)
{
	const char *e = getenv(var);
	char home[PATH_MAX];

	buf[0] = '\0';
	if (e && *e) {
		if (e[0] == '~' && e[1] == '/' &&
		    !home_dir(home, sizeof(home)))
			snprintf(buf, size, "%s%s", home, e + 1);
		else
			snprintf(buf, size, "%s", e);
		return;
	}
	if (!home_dir(home, sizeof(home)))
		snprintf(buf, size, "%s/%s", home, dflt);
}

void s3_aws_files(char *creds, char *config, size_t size)
{
	aws_file("AWS_SHARED_CREDENTIALS_FILE", ".aws/credentials", creds,
		 size);
	aws_file("AWS_CONFIG_FILE", ".aws/config", config, size);
}

/* ---- sizes and flags ------------------------------------------------ */

int s3_parse_size(const char *s, uint64_t *out)
{
	unsigned long long v;
	uint64_t mul = 1;
	char *end;

	if (!s || !isdigit((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno)
		return -EINVAL;
	if (*end) {
		switch (toupper((unsigned char)*end)) {
		case 'K':
			mul = 1ULL << 10;
			break;
		case 'M':
			mul = 1ULL << 20;
			break;
		case 'G':
			mul = 1ULL << 30;
			break;
		default:
			return -EINVAL;
		}
		end++;
		if (*end && strcasecmp(end, "iB") && strcasecmp(end, "B"))
			return -EINVAL;
	}
	if (v > UINT64_MAX / mul)
		return -EINVAL;
	*out = v * mul;
	return 0;
}

static int parse_bool(const char *s, int *out)
{
	if (!strcasecmp(s, "true") || !strcasecmp(s, "yes") ||
	    !strcmp(s, "1") || !strcasecmp(s, "on"))
		*out = 1;
	else if (!strcasecmp(s, "false") || !strcasecmp(s, "no") ||
		 !strcmp(s, "0") || !strcasecmp(s, "off"))
		*out = 0;
	else
		return -EINVAL;
	return 0;
}

/* ---- remotes -------------------------------------------------------- */

void s3_remote_init(struct s3_remote *r)
{
	memset(r, 0, sizeof(*r));
	r->multipart_threshold = S3_DEFAULT_MULTIPART_THRESHOLD;
	r->part_size = S3_DEFAULT_PART_SIZE;
	r->parallel = S3_DEFAULT_PARALLEL;
}

static void remote_release(struct s3_remote *r)
{
	free(r->endpoint);
	free(r->region);
	free(r->profile);
	free(r->ca_file);
	memset(r, 0, sizeof(*r));
}

void s3_remotes_release(struct s3_remotes *rs)
{
	size_t i;

	if (!rs)
		return;
	for (i = 0; i < rs->n; i++)
		remote_release(&rs->v[i]);
	free(rs->v);
	rs->v = NULL;
	rs->n = 0;
}

const struct s3_remote *s3_remotes_find(const struct s3_remotes *rs,
					const char *name)
{
	size_t i;

	for (i = 0; i < rs->n; i++)
		if (!strcmp(rs->v[i].name, name))
			return &rs->v[i];
	return NULL;
}

/* Whether @s has a control character (a newline would break the file). */
static int has_control(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return 1;
	return 0;
}

/* Check "http[s]://HOST[:PORT][/]"; 0 or a static reason in *@why. */
static int endpoint_check(const char *url, const char **why)
{
	const char *host, *p, *port = NULL;
	long v;
	char *end;

	if (!strncasecmp(url, "https://", 8))
		host = url + 8;
	else if (!strncasecmp(url, "http://", 7))
		host = url + 7;
	else {
		*why = "it does not start with http:// or https://";
		return -EINVAL;
	}
	if (*host == '[') {
		p = strchr(host, ']');
		if (!p || p == host + 1) {
			*why = "its IPv6 address has no closing ']'";
			return -EINVAL;
		}
		p++;
	} else {
		for (p = host; *p && !strchr(":/?#@", *p); p++)
			if (!isalnum((unsigned char)*p) && *p != '-' &&
			    *p != '.' && *p != '_') {
				*why = "its host has a character that a host "
				       "name cannot have";
				return -EINVAL;
			}
		if (p == host) {
			*why = "it names no host";
			return -EINVAL;
		}
	}
	if (*p == '@' || strchr(host, '@')) {
		*why = "it has a user name or password in it: credentials "
		       "come from the environment or ~/.aws, never from a URL";
		return -EINVAL;
	}
	if (*p == ':') {
		port = p + 1;
		errno = 0;
		v = strtol(port, &end, 10);
		if (errno || end == port || v < 1 || v > 65535) {
			*why = "its port is not a number from 1 to 65535";
			return -EINVAL;
		}
		p = end;
	}
	if (*p == '/' && !p[1])
		p++;
	if (*p) {
		*why = "it has a path, query or fragment after the host "
		       "(give http[s]://HOST[:PORT] only)";
		return -EINVAL;
	}
	return 0;
}

int s3_remote_check(const struct s3_remote *r, char *err, size_t errlen)
{
	const char *why = NULL, *p;

	if (repl_remote_name_check(r->name, &why))
		return fail(err, errlen, -EINVAL, "remote '%s': %s", r->name,
			    why);
	if (r->endpoint && (has_control(r->endpoint) ||
			    endpoint_check(r->endpoint, &why)))
		return fail(err, errlen, -EINVAL,
			    "remote %s: endpoint '%s' is not a URL of an S3 "
			    "service: %s", r->name,
			    has_control(r->endpoint) || strchr(r->endpoint, '@')
				    ? "..." : r->endpoint,
			    why ? why : "it has a control character");
	if (r->region) {
		for (p = r->region; *p; p++)
			if (!isalnum((unsigned char)*p) && *p != '-' &&
			    *p != '_')
				break;
		if (!*r->region || *p || strlen(r->region) > 64)
			return fail(err, errlen, -EINVAL,
				    "remote %s: a region has 1 to 64 letters, "
				    "digits, '-' or '_' (like us-east-1)",
				    r->name);
	}
	if (r->profile) {
		for (p = r->profile; *p; p++)
			if ((unsigned char)*p <= 0x20 || *p == 0x7f ||
			    *p == '[' || *p == ']')
				break;
		if (!*r->profile || *p || strlen(r->profile) > 128)
			return fail(err, errlen, -EINVAL,
				    "remote %s: a profile's name has 1 to 128 "
				    "printable characters, no blank or bracket",
				    r->name);
	}
	if (r->ca_file && (!*r->ca_file || has_control(r->ca_file)))
		return fail(err, errlen, -EINVAL,
			    "remote %s: the CA file's name is empty or has a "
			    "control character", r->name);
	if (r->part_size < S3_PART_MIN || r->part_size > S3_PART_MAX)
		return fail(err, errlen, -EINVAL,
			    "remote %s: a part size is from 5 MiB to 5 GiB, as "
			    "S3 wants", r->name);
	if (r->multipart_threshold < S3_PART_MIN ||
	    r->multipart_threshold > S3_PART_MAX)
		return fail(err, errlen, -EINVAL,
			    "remote %s: the multipart threshold is from 5 MiB "
			    "to 5 GiB (a single PUT takes at most 5 GiB)",
			    r->name);
	if (r->parallel < 1 || r->parallel > S3_PARALLEL_MAX)
		return fail(err, errlen, -EINVAL,
			    "remote %s: parallel parts are from 1 to %d",
			    r->name, S3_PARALLEL_MAX);
	return 0;
}

struct load_ctx {
	struct s3_remotes *rs;
	const char *path;
	char *err;
	size_t errlen;
};

static int remote_setting(void *arg, const char *section, const char *key,
			  const char *value, int line)
{
	struct load_ctx *c = arg;
	struct s3_remote *r, *grown;
	const char *why = NULL;
	int ret = 0;

	if (!*section)
		return fail(c->err, c->errlen, -EINVAL,
			    "%s, line %d: a setting before the first [REMOTE]",
			    c->path, line);
	if (!key) {
		/* A new [REMOTE]. */
		if (repl_remote_name_check(section, &why))
			return fail(c->err, c->errlen, -EINVAL,
				    "%s, line %d: [%s]: %s", c->path, line,
				    section, why);
		if (s3_remotes_find(c->rs, section))
			return fail(c->err, c->errlen, -EINVAL,
				    "%s, line %d: remote %s appears twice",
				    c->path, line, section);
		grown = realloc(c->rs->v, (c->rs->n + 1) * sizeof(*grown));
		if (!grown)
			return -ENOMEM;
		c->rs->v = grown;
		r = &grown[c->rs->n++];
		s3_remote_init(r);
		memcpy(r->name, section, strlen(section) + 1);
		return 0;
	}
	r = &c->rs->v[c->rs->n - 1];	/* the section's, just made */
	if (!strcmp(key, "endpoint"))
		ret = set_str(&r->endpoint, value, 0);
	else if (!strcmp(key, "region"))
		ret = set_str(&r->region, value, 0);
	else if (!strcmp(key, "profile"))
		ret = set_str(&r->profile, value, 0);
	else if (!strcmp(key, "ca_file"))
		ret = set_str(&r->ca_file, value, 0);
	else if (!strcmp(key, "path_style")) {
		if (parse_bool(value, &r->path_style))
			goto bad;
	} else if (!strcmp(key, "insecure_tls")) {
		if (parse_bool(value, &r->insecure))
			goto bad;
	} else if (!strcmp(key, "multipart_threshold")) {
		if (s3_parse_size(value, &r->multipart_threshold))
			goto bad;
	} else if (!strcmp(key, "part_size")) {
		if (s3_parse_size(value, &r->part_size))
			goto bad;
	} else if (!strcmp(key, "parallel")) {
		uint64_t v;

		if (s3_parse_size(value, &v) || v > S3_PARALLEL_MAX)
			goto bad;
		r->parallel = (int)v;
	} else {
		return fail(c->err, c->errlen, -EINVAL,
			    "%s, line %d: unknown setting '%s'", c->path, line,
			    key);
	}
	return ret;
bad:
	return fail(c->err, c->errlen, -EINVAL,
		    "%s, line %d: '%s' is not a value for %s", c->path, line,
		    value, key);
}

int s3_remotes_load(const char *path, struct s3_remotes *out, char *err,
		    size_t errlen)
{
	char def[PATH_MAX], *text = NULL;
	struct load_ctx c = { out, NULL, err, errlen };
	size_t len = 0, i;
	int ret, bad = 0;

	out->v = NULL;
	out->n = 0;
	if (!path) {
		ret = s3_remotes_path(def, sizeof(def));
		if (ret)
			return fail(err, errlen, ret, "cannot find the "
				    "configuration directory: %s",
				    strerror(-ret));
		path = def;
	}
	c.path = path;
	ret = read_file(path, &text, &len);
	if (ret == -ENOENT)
		return 0;
	if (ret)
		return fail(err, errlen, ret, "cannot read %s: %s", path,
			    strerror(-ret));
	if (err && errlen)
		err[0] = '\0';
	ret = s3_ini_parse(text, len, remote_setting, &c, &bad);
	free_secret(text);
	if (ret == -EINVAL && err && errlen && !err[0])
		fail(err, errlen, ret, "%s, line %d: not a [REMOTE] line, a "
		     "setting or a comment", path, bad);
	else if (ret == -ENOMEM)
		fail(err, errlen, ret, "out of memory");
	for (i = 0; !ret && i < out->n; i++) {
		ret = s3_remote_check(&out->v[i], err, errlen);
		if (ret) {
			size_t l = err ? strlen(err) : 0;

			if (err && l + 1 < errlen)
				snprintf(err + l, errlen - l, " (in %s)", path);
		}
	}
	return ret;
}

/* Append the text of @r to @f. */
static void remote_write(FILE *f, const struct s3_remote *r)
{
	fprintf(f, "\n[%s]\n", r->name);
	if (r->endpoint)
		fprintf(f, "endpoint = %s\n", r->endpoint);
	if (r->region)
		fprintf(f, "region = %s\n", r->region);
	if (r->profile)
		fprintf(f, "profile = %s\n", r->profile);
	if (r->ca_file)
		fprintf(f, "ca_file = %s\n", r->ca_file);
	if (r->path_style)
		fprintf(f, "path_style = true\n");
	if (r->insecure)
		fprintf(f, "insecure_tls = true\n");
	if (r->multipart_threshold != S3_DEFAULT_MULTIPART_THRESHOLD)
		fprintf(f, "multipart_threshold = %llu\n",
			(unsigned long long)r->multipart_threshold);
	if (r->part_size != S3_DEFAULT_PART_SIZE)
		fprintf(f, "part_size = %llu\n",
			(unsigned long long)r->part_size);
	if (r->parallel != S3_DEFAULT_PARALLEL)
		fprintf(f, "parallel = %d\n", r->parallel);
}

/* mkdir -p @dir, each new directory with mode 0700. */
static int mkdir_p(const char *dir)
{
	char p[PATH_MAX];
	size_t i, n = strlen(dir);

	if (n >= sizeof(p))
		return -ENAMETOOLONG;
	memcpy(p, dir, n + 1);
	for (i = 1; i <= n; i++) {
		if (p[i] != '/' && p[i] != '\0')
			continue;
		p[i] = '\0';
		if (mkdir(p, 0700) && errno != EEXIST)
			return -errno;
		p[i] = i < n ? '/' : '\0';
	}
	return 0;
}

/*
 * The one writer: take PATH.lock, load PATH, apply @add (a remote to add)
 * or @remove (a name to remove), write the text to the lock file, sync,
 * rename over PATH, sync the directory.
 */
static int remotes_change(const char *path, const struct s3_remote *add,
			  const char *remove, char *err, size_t errlen)
{
	char def[PATH_MAX], lock[PATH_MAX + 8], dir[PATH_MAX];
	struct s3_remotes rs = { NULL, 0 };
	FILE *f = NULL;
	size_t i;
	int fd = -1, dfd, ret, locked = 0;
	char *slash;

	if (!path) {
		ret = s3_remotes_path(def, sizeof(def));
		if (ret)
			return fail(err, errlen, ret, "cannot find the "
				    "configuration directory: %s",
				    strerror(-ret));
		path = def;
	}
	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = '\0';
		ret = mkdir_p(dir);
		if (ret)
			return fail(err, errlen, ret, "cannot make %s: %s", dir,
				    strerror(-ret));
	} else {
		snprintf(dir, sizeof(dir), "%s", slash ? "/" : ".");
	}
	if ((size_t)snprintf(lock, sizeof(lock), "%s.lock", path) >=
	    sizeof(lock))
		return fail(err, errlen, -ENAMETOOLONG, "%s: name too long",
			    path);
	fd = open(lock, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		ret = -errno;
		if (ret == -EEXIST)
			return fail(err, errlen, ret,
				    "%s exists: another replicafs command is "
				    "changing the remotes (remove it if none "
				    "is running)", lock);
		return fail(err, errlen, ret, "cannot create %s: %s", lock,
			    strerror(-ret));
	}
	locked = 1;
	ret = s3_remotes_load(path, &rs, err, errlen);
	if (ret)
		goto out;
	if (add) {
		struct s3_remote *grown;

		if (s3_remotes_find(&rs, add->name)) {
			ret = fail(err, errlen, -EEXIST,
				   "remote %s exists (replicafs remote remove "
				   "%s first)", add->name, add->name);
			goto out;
		}
		grown = realloc(rs.v, (rs.n + 1) * sizeof(*grown));
		if (!grown) {
			ret = fail(err, errlen, -ENOMEM, "out of memory");
			goto out;
		}
		rs.v = grown;
		/* Borrowed strings, past rs.n: written, never released. */
		grown[rs.n] = *add;
	} else {
		for (i = 0; i < rs.n; i++)
			if (!strcmp(rs.v[i].name, remove))
				break;
		if (i == rs.n) {
			ret = fail(err, errlen, -ENOENT, "no remote named %s",
				   remove);
			goto out;
		}
		remote_release(&rs.v[i]);
		memmove(&rs.v[i], &rs.v[i + 1],
			(rs.n - i - 1) * sizeof(rs.v[0]));
		rs.n--;
	}
	f = fdopen(fd, "w");
	if (!f) {
		ret = fail(err, errlen, -errno, "cannot write %s: %s", lock,
			   strerror(errno));
		goto out;
	}
	fd = -1;
	fprintf(f, "# replicafs remotes (replicafs remote add|remove). No "
		   "secrets here: credentials\n# come from the environment or "
		   "~/.aws/credentials, as for the AWS tools.\n");
	for (i = 0; i < rs.n + (add ? 1 : 0); i++)
		remote_write(f, &rs.v[i]);
	if (fflush(f) || ferror(f) || fsync(fileno(f))) {
		ret = fail(err, errlen, -EIO, "cannot write %s: %s", lock,
			   strerror(errno));
		goto out;
	}
	if (fclose(f)) {
		f = NULL;
		ret = fail(err, errlen, -EIO, "cannot write %s: %s", lock,
			   strerror(errno));
		goto out;
	}
	f = NULL;
	if (rename(lock, path)) {
		ret = fail(err, errlen, -errno, "cannot rename %s to %s: %s",
			   lock, path, strerror(errno));
		goto out;
	}
	locked = 0;
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		fsync(dfd);
		close(dfd);
	}
	ret = 0;
out:
	if (f)
		fclose(f);
	if (fd >= 0)
		close(fd);
	if (locked)
		unlink(lock);
	s3_remotes_release(&rs);
	return ret;
}

int s3_remotes_add(const char *path, const struct s3_remote *r, char *err,
		   size_t errlen)
{
	int ret = s3_remote_check(r, err, errlen);

	if (ret)
		return ret;
	return remotes_change(path, r, NULL, err, errlen);
}

int s3_remotes_remove(const char *path, const char *name, char *err,
		      size_t errlen)
{
	const char *why = NULL;

	if (repl_remote_name_check(name, &why))
		return fail(err, errlen, -EINVAL, "'%s': %s", name, why);
	return remotes_change(path, NULL, name, err, errlen);
}

/* ---- the AWS files -------------------------------------------------- */

struct aws_ctx {
	const char *profile;
	int config;		/* the config file: [profile NAME] */
	int found;		/* the profile's section was seen */
	char *key_id, *secret, *token;	/* the file's keys */
	char *region, *endpoint_url, *s3_endpoint_url;
	int path_style;
};

/* Whether @section of the file names ctx's profile. */
static int is_profile_section(const struct aws_ctx *c, const char *section)
{
	size_t n;

	if (!c->config)
		return !strcmp(section, c->profile);
	if (!strcmp(c->profile, "default") && !strcmp(section, "default"))
		return 1;
	if (strncmp(section, "profile", 7) || !is_blank(section[7]))
		return 0;
	section += 7;
	while (is_blank(*section))
		section++;
	n = strlen(c->profile);
	return !strncmp(section, c->profile, n) && !section[n];
}

static int aws_setting(void *arg, const char *section, const char *key,
		       const char *value, int line)
{
	struct aws_ctx *c = arg;

	(void)line;
	if (!is_profile_section(c, section))
		return 0;
	c->found = 1;
	if (!key)
		return 0;	/* the section's own line */
	if (!strcmp(key, "aws_access_key_id"))
		return set_str(&c->key_id, value, 1);
	if (!strcmp(key, "aws_secret_access_key"))
		return set_str(&c->secret, value, 1);
	if (!strcmp(key, "aws_session_token") ||
	    (!strcmp(key, "aws_security_token") && !c->token))
		return set_str(&c->token, value, 1);
	if (!c->config)
		return 0;	/* the credentials file has keys only */
	if (!strcmp(key, "region"))
		return set_str(&c->region, value, 0);
	if (!strcmp(key, "endpoint_url"))
		return set_str(&c->endpoint_url, value, 0);
	if (!strcmp(key, "s3.endpoint_url"))
		return set_str(&c->s3_endpoint_url, value, 0);
	if (!strcmp(key, "s3.addressing_style")) {
		if (!strcmp(value, "path"))
			c->path_style = 1;
		else if (!strcmp(value, "virtual"))
			c->path_style = 0;
	}
	return 0;
}

static void aws_ctx_release(struct aws_ctx *c)
{
	free_secret(c->key_id);
	free_secret(c->secret);
	free_secret(c->token);
	free(c->region);
	free(c->endpoint_url);
	free(c->s3_endpoint_url);
}

/* Read one AWS file for ctx's profile.  A missing file is fine. */
static int aws_read(const char *path, struct aws_ctx *c, char *err,
		    size_t errlen)
{
	char *text = NULL;
	size_t len = 0;
	int ret, bad = 0;

	if (!*path)
		return 0;
	ret = read_file(path, &text, &len);
	if (ret == -ENOENT)
		return 0;
	if (ret)
		return fail(err, errlen, ret, "cannot read %s: %s", path,
			    strerror(-ret));
	ret = s3_ini_parse(text, len, aws_setting, c, &bad);
	free_secret(text);
	if (ret == -EINVAL)
		return fail(err, errlen, ret,
			    "%s, line %d: not a [SECTION] line, a setting or "
			    "a comment", path, bad);
	if (ret)
		return fail(err, errlen, ret, "%s: %s", path, strerror(-ret));
	return 0;
}

void s3_aws_profile_release(struct s3_aws_profile *p)
{
	if (!p)
		return;
	free(p->profile);
	free_secret(p->access_key_id);
	free_secret(p->secret_access_key);
	free_secret(p->session_token);
	free(p->creds_source);
	free(p->region);
	free(p->endpoint_url);
	free(p->files);
	memset(p, 0, sizeof(*p));
	p->path_style = -1;
}

/* The first of the environment variables @a, @b that is set and not
 * empty, or NULL. */
static const char *env2(const char *a, const char *b)
{
	const char *v = getenv(a);

	if (v && *v)
		return v;
	v = b ? getenv(b) : NULL;
	return v && *v ? v : NULL;
}

int s3_aws_profile_load(const char *profile, struct s3_aws_profile *out,
			char *err, size_t errlen)
{
	char creds_path[PATH_MAX], config_path[PATH_MAX], src[PATH_MAX + 80];
	struct aws_ctx cc = { 0 }, fc = { 0 };
	const char *name = profile, *k, *s, *t;
	int ret, explicit = profile != NULL;
	size_t n;

	memset(out, 0, sizeof(*out));
	out->path_style = -1;
	if (!name)
		name = env2("AWS_PROFILE", "AWS_DEFAULT_PROFILE");
	if (!name)
		name = "default";
	s3_aws_files(creds_path, config_path, sizeof(creds_path));
	n = strlen(creds_path) + strlen(config_path) + 8;
	out->profile = strdup(name);
	out->files = malloc(n);
	if (!out->profile || !out->files) {
		ret = fail(err, errlen, -ENOMEM, "out of memory");
		goto out;
	}
	snprintf(out->files, n, "%s and %s", creds_path, config_path);
	cc.profile = fc.profile = name;
	cc.path_style = fc.path_style = -1;
	fc.config = 1;
	ret = aws_read(creds_path, &cc, err, errlen);
	if (!ret)
		ret = aws_read(config_path, &fc, err, errlen);
	if (ret)
		goto out;
	if (explicit && !cc.found && !fc.found) {
		ret = fail(err, errlen, -ENOENT,
			   "profile '%s' is in neither %s nor %s", name,
			   creds_path, config_path);
		goto out;
	}

	/* The keys: the environment, the credentials file, the config. */
	k = getenv("AWS_ACCESS_KEY_ID");
	s = getenv("AWS_SECRET_ACCESS_KEY");
	t = env2("AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN");
	src[0] = '\0';
	if (!explicit && k && *k && s && *s) {
		snprintf(src, sizeof(src), "the environment "
			 "(AWS_ACCESS_KEY_ID)");
	} else if (cc.key_id && cc.secret) {
		k = cc.key_id;
		s = cc.secret;
		t = cc.token;
		snprintf(src, sizeof(src), "profile %s in %s", name,
			 creds_path);
	} else if (fc.key_id && fc.secret) {
		k = fc.key_id;
		s = fc.secret;
		t = fc.token;
		snprintf(src, sizeof(src), "profile %s in %s", name,
			 config_path);
	} else {
		k = s = t = NULL;
	}
	if (k) {
		ret = set_str(&out->access_key_id, k, 1);
		if (!ret)
			ret = set_str(&out->secret_access_key, s, 1);
		if (!ret && t && *t)
			ret = set_str(&out->session_token, t, 1);
		if (!ret)
			ret = set_str(&out->creds_source, src, 0);
		if (ret) {
			ret = fail(err, errlen, ret, "out of memory");
			goto out;
		}
	}

	/* Region and endpoint: the environment, then the config file. */
	ret = set_str(&out->region, env2("AWS_REGION", "AWS_DEFAULT_REGION")
				    ?: fc.region, 0);
	if (!ret)
		ret = set_str(&out->endpoint_url,
			      env2("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL")
			      ?: fc.s3_endpoint_url ?: fc.endpoint_url, 0);
	if (ret) {
		ret = fail(err, errlen, ret, "out of memory");
		goto out;
	}
	out->path_style = fc.path_style;
out:
	aws_ctx_release(&cc);
	aws_ctx_release(&fc);
	return ret;
}
