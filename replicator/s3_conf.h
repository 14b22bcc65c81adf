/*
 * s3_conf.h - the configuration an S3 destination reads: replicafs's own
 * remotes file, and the AWS tools' shared credentials and config files.
 *
 * Remotes are the user's configuration, not a store's: `replicafs remote
 * add NAME ENDPOINT-URL ...` writes them to one file,
 *
 *   $REPLICAFS_CONFIG_DIR/remotes            (tests, or to override)
 *   $XDG_CONFIG_HOME/replicafs/remotes       (else)
 *   ~/.config/replicafs/remotes              (else)
 *
 * an INI file with one section per remote, mode 0600, that never holds a
 * secret:
 *
 *   [eu]
 *   endpoint = https://s3.eu-west-1.amazonaws.com
 *   region = eu-west-1
 *   profile = backup
 *
 * It is changed as git changes its config: the new text goes to
 * remotes.lock (O_EXCL, which is also the lock), is synced, and renamed
 * over remotes, so a reader sees the old file or the new one.
 *
 * Credentials are found where the AWS tools look, in botocore's order:
 *
 *   1. AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN (or
 *      AWS_SECURITY_TOKEN), unless the remote names a profile of its own
 *      (as `aws --profile P` ignores them);
 *   2. the profile (the remote's, else AWS_PROFILE, AWS_DEFAULT_PROFILE,
 *      else "default") in the credentials file
 *      ($AWS_SHARED_CREDENTIALS_FILE, else ~/.aws/credentials), section
 *      [NAME];
 *   3. the same profile in the config file ($AWS_CONFIG_FILE, else
 *      ~/.aws/config), section [profile NAME] (or [default]).
 *
 * The region is AWS_REGION, AWS_DEFAULT_REGION, else the profile's
 * `region`; the endpoint AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL, else the
 * profile's `endpoint_url` (or `s3 = ... endpoint_url`).  A remote's own
 * settings win over all of these.
 *
 * No function here logs, prints or puts a secret into an error message;
 * s3_aws_profile_release() wipes the secrets it frees.  Nothing keeps
 * state between calls: the functions are safe from any thread (they read
 * the environment, which nobody changes after start-up).
 */
#ifndef REPLICAFS_S3_CONF_H
#define REPLICAFS_S3_CONF_H

#include <stddef.h>
#include <stdint.h>

/* Defaults of a remote's transfer settings. */
#define S3_DEFAULT_MULTIPART_THRESHOLD (16ULL << 20)
#define S3_DEFAULT_PART_SIZE	       (16ULL << 20)
#define S3_DEFAULT_PARALLEL	       4
/* S3's limits on parts. */
#define S3_PART_MIN	  (5ULL << 20)
#define S3_PART_MAX	  (5ULL << 30)
#define S3_PARTS_MAX	  10000
#define S3_PARALLEL_MAX	  64

/* ---- INI files ------------------------------------------------------ */

/*
 * Called for each setting of an INI file: @section as written between
 * the brackets, trimmed ("" before any section); @key in lowercase, or
 * "PARENT.KEY" for an indented line below "PARENT =" (botocore's nested
 * settings, such as "s3.addressing_style"); @value trimmed.  A section's
 * line itself comes too, with @key and @value NULL.  @line is 1-based.  A
 * non-zero return stops the parse and is returned.  The strings are valid
 * during the call only.
 */
typedef int (*s3_ini_cb)(void *arg, const char *section, const char *key,
			 const char *value, int line);

/*
 * Parse @len bytes of @text as the AWS tools read their files: sections
 * "[NAME]", settings "key = value" (or "key: value"), comments on lines
 * that start with '#' or ';' (a '#' inside a value is part of it), blank
 * lines ignored.  Returns 0, the callback's non-zero value, -ENOMEM, or
 * -EINVAL for a line that is none of these (its number in *@bad_line
 * when @bad_line is not NULL).
 */
int s3_ini_parse(const char *text, size_t len, s3_ini_cb cb, void *arg,
		 int *bad_line);

/* ---- Remotes -------------------------------------------------------- */

struct s3_remote {
	char name[64];		/* valid by repl_remote_name_check() */
	char *endpoint;		/* "http[s]://HOST[:PORT]", NULL: from
				 * the AWS config, else AWS's own */
	char *region;		/* NULL: from the AWS config */
	char *profile;		/* NULL: AWS_PROFILE, else "default" */
	char *ca_file;		/* NULL: the system's CAs only */
	int path_style;		/* 1: https://HOST/BUCKET/KEY; 0: virtual
				 * hosted, https://BUCKET.HOST/KEY */
	int insecure;		/* 1: TLS certificates are not verified */
	uint64_t multipart_threshold;	/* larger objects go in parts */
	uint64_t part_size;
	int parallel;		/* parts in flight for one object */
};

/* Every remote of the file, in its order.  Owned by the struct: free
 * with s3_remotes_release(). */
struct s3_remotes {
	struct s3_remote *v;
	size_t n;
};

/*
 * The directory of replicafs's configuration into @buf: REPLICAFS_CONFIG_DIR,
 * else $XDG_CONFIG_HOME/replicafs, else $HOME/.config/replicafs (HOME from
 * the password database when unset).  -ENAMETOOLONG, or -ENOENT when no
 * home directory can be found.
 */
int s3_config_dir(char *buf, size_t size);

/* The remotes file, s3_config_dir()/remotes, into @buf. */
int s3_remotes_path(char *buf, size_t size);

/* A remote with every default filled in and no strings: the caller fills
 * name and endpoint. */
void s3_remote_init(struct s3_remote *r);

/*
 * Check a remote's settings as `remote add` and the file's reader do: the
 * name, an endpoint "http://HOST[:PORT]" or "https://..." (no user, path,
 * query or fragment: a secret must never sit in a URL), a region of
 * letters, digits and '-', a profile of printable characters without
 * brackets, part sizes within S3's limits.  0, or -EINVAL with a sentence
 * in @err.
 */
int s3_remote_check(const struct s3_remote *r, char *err, size_t errlen);

/*
 * Read the remotes file @path (NULL: s3_remotes_path()) into *@out.  A
 * missing file is an empty list.  -EINVAL with the file and line in @err
 * for a file that is not valid; -ENOMEM; another negative errno when it
 * cannot be read.  The caller releases *@out with s3_remotes_release()
 * (also after a failure: harmless).
 */
int s3_remotes_load(const char *path, struct s3_remotes *out, char *err,
		    size_t errlen);

void s3_remotes_release(struct s3_remotes *rs);

/* The remote named @name in @rs, or NULL; it belongs to @rs. */
const struct s3_remote *s3_remotes_find(const struct s3_remotes *rs,
					const char *name);

/*
 * Add @r (copied, after s3_remote_check()) to the remotes file @path (NULL:
 * the default), or remove the remote @name from it: read, change and
 * write back under PATH.lock, which is renamed into place (mode 0600,
 * directories made with 0700).  -EEXIST when @r's name is taken (add) or
 * when PATH.lock exists (another command is changing the file: the
 * message says so); -ENOENT when there is no remote @name (remove).
 */
int s3_remotes_add(const char *path, const struct s3_remote *r, char *err,
		   size_t errlen);
int s3_remotes_remove(const char *path, const char *name, char *err,
		      size_t errlen);

/* ---- The AWS tools' files and environment --------------------------- */

/*
 * What the AWS configuration says for one profile.  Each string is owned
 * by the struct (NULL when not set) and freed by s3_aws_profile_release(),
 * which wipes the secrets first.
 */
struct s3_aws_profile {
	char *profile;		/* the profile's name, as chosen */
	char *access_key_id;
	char *secret_access_key;	/* never print or log */
	char *session_token;		/* never print or log */
	char *creds_source;	/* where the keys came from, for messages:
				 * "the environment (AWS_ACCESS_KEY_ID)",
				 * "profile P in FILE"; NULL when none */
	char *region;
	char *endpoint_url;
	int path_style;		/* s3.addressing_style: 1 path, 0
				 * virtual, -1 not set */
	char *files;		/* the two files read, for messages */
};

/*
 * Read the AWS configuration for @profile (NULL: AWS_PROFILE,
 * AWS_DEFAULT_PROFILE, else "default") into *@out, in the order described
 * at the top of this file.  A profile named explicitly (not NULL) that
 * exists in neither file is -ENOENT with a sentence in @err; missing keys
 * are not an error (access_key_id stays NULL: the caller says what is
 * missing).  -EINVAL for a file that cannot be parsed, -ENOMEM.  The
 * caller releases *@out with s3_aws_profile_release() in every case.
 */
int s3_aws_profile_load(const char *profile, struct s3_aws_profile *out,
			char *err, size_t errlen);

void s3_aws_profile_release(struct s3_aws_profile *p);

/*
 * The paths of the two AWS files into @creds and @config (PATH_MAX bytes
 * each; an empty string when no home directory is known).
 */
void s3_aws_files(char *creds, char *config, size_t size);

/*
 * Parse a size: digits with an optional suffix K, M, G (powers of 1024;
 * "KiB", "MiB", "GiB" too).  0 or -EINVAL.
 */
int s3_parse_size(const char *s, uint64_t *out);

#endif
