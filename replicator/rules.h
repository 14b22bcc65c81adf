/*
 * rules.h - a bucket's replication configuration, with S3's rules.
 *
 * A configuration is the JSON that
 * `aws s3api put-bucket-replication --replication-configuration` takes:
 *
 *   {"Role": "arn:...", "Rules": [{"ID": "r1", "Priority": 1,
 *     "Status": "Enabled", "Filter": {"Prefix": "docs/"},
 *     "Destination": {"Bucket": "store:///srv/backup/photos"},
 *     "DeleteMarkerReplication": {"Status": "Enabled"},
 *     "ExistingObjectReplication": {"Status": "Disabled"}}]}
 *
 * with the destination named by a URL in Destination.Bucket:
 *
 *   store:///path/to/store/BUCKET   a bucket of another replicafs store
 *   dir:///path/to/dir              a plain directory
 *   s3://REMOTE/BUCKET[/PREFIX]     a bucket on a remote (`replicafs remote`)
 *   arn:aws:s3:::BUCKET             the same as s3://default/BUCKET
 *
 * repl_config_parse() checks everything S3 checks that makes sense here
 * and refuses the rest with -EINVAL and one sentence that says what is
 * wrong and where ("Rules[2].Status: ..."); repl_config_to_json() gives
 * the canonical text back; repl_config_destinations() says where one
 * version goes.
 *
 * The structs are plain and read-only for callers: a parsed configuration
 * owns every string and array it points to, and only this module writes
 * or frees them.  Nothing here is shared between threads by the module
 * itself: a parsed configuration is never changed, so several threads may
 * read one at a time without a lock.
 */
#ifndef REPLICAFS_RULES_H
#define REPLICAFS_RULES_H

#include <stdbool.h>
#include <stddef.h>

/* Limits S3 sets, which replicafs keeps. */
#define REPL_RULES_MAX	     1000 /* rules in one configuration */
#define REPL_ID_MAX	     255  /* bytes of a rule's ID */
#define REPL_TAG_KEY_MAX     128  /* bytes of a tag key (at least 1) */
#define REPL_TAG_VALUE_MAX   256  /* bytes of a tag value (may be 0) */
#define REPL_TAGS_MAX	     10	  /* tags in one filter (and on an object) */
#define REPL_MINUTES_MAX     1440 /* ReplicationTime.Time.Minutes, 1..this */
#define REPL_MINUTES_DEFAULT 15	  /* ... when absent, as S3's RTC */

/* ---- Destination URLs ----------------------------------------------- */

enum repl_dest_kind {
	REPL_DEST_STORE = 1, /* store:///STORE/BUCKET */
	REPL_DEST_DIR,	     /* dir:///DIR */
	REPL_DEST_S3,	     /* s3://REMOTE/BUCKET[/PREFIX], arn:aws:s3::: */
};

/*
 * A parsed destination URL.  Every field is owned by the struct and freed
 * by repl_dest_url_release(); a field the kind does not have is NULL.
 */
struct repl_dest_url {
	enum repl_dest_kind kind;
	char *url;    /* the canonical form: paths without "//", "." or a
		       * trailing '/', the scheme in lowercase, an ARN as
		       * s3://default/BUCKET.  Two URLs name the same
		       * destination exactly when their forms are equal */
	char *path;   /* STORE: the store's directory; DIR: the
		       * directory.  Absolute, in canonical form */
	char *remote; /* S3: the remote's name ("default" for an ARN) */
	char *bucket; /* STORE, S3: the bucket, valid by S3's rules */
	char *prefix; /* S3: the key prefix at the destination, as
		       * written after "BUCKET/" ("" when none) */
};

/*
 * Parse destination URL @url into *@out.  Paths must be absolute
 * ("store:///...", "dir:///..."): a host part, a relative or empty path,
 * a ".." component or a control character is refused; the URL is taken
 * as written (no %-decoding).  A store URL's last component is the bucket
 * and the rest the store's directory, which cannot be "/".
 *
 * Returns 0, -EINVAL with one sentence in @err (naming the URL), or
 * -ENOMEM.  On success the caller releases *@out with
 * repl_dest_url_release(); on failure *@out holds nothing to release.
 */
int repl_dest_url_parse(const char *url, struct repl_dest_url *out, char *err,
			size_t errlen);

/* Free what *@u holds (not @u itself) and zero it; NULL is a no-op. */
void repl_dest_url_release(struct repl_dest_url *u);

/*
 * Check the name of a remote, as s3://REMOTE/... names it: 1..63 letters,
 * digits, '.', '_' and '-', starting with a letter or digit.  Returns 0, or
 * -EINVAL and, when @why is not NULL, a static sentence in *@why.
 */
int repl_remote_name_check(const char *name, const char **why);

/* ---- Configurations ------------------------------------------------- */

/* A tag: a filter's condition, or one of an object's tags.  In a parsed
 * configuration the strings are owned by it; in a caller's array of an
 * object's tags they are the caller's. */
struct repl_tag {
	const char *key;
	const char *value;
};

/*
 * What a rule selects: keys that start with @prefix ("" selects every key)
 * and that carry every tag in @tags.  The tags are sorted by key, and no
 * key appears twice.
 */
struct repl_filter {
	const char *prefix;
	const struct repl_tag *tags;
	size_t ntags;
};

/* How many fields of Destination, and of SourceSelectionCriteria, are
 * accepted and not used (for struct repl_rule's notes). */
#define REPL_UNUSED_DEST 5
#define REPL_UNUSED_SSC	 2

struct repl_rule {
	const char *id; /* the ID given, or "rule-N" when none was
			 * (N is the rule's place, 1-based, made
			 * unique) */
	int priority;	/* >= 0; 0 when absent */
	bool enabled;	/* Status */
	bool v1;	/* written with a rule-level Prefix (S3's V1
			 * schema): printed back that way */
	struct repl_filter filter;
	struct repl_dest_url dest; /* Destination.Bucket */
	bool delete_markers;	   /* DeleteMarkerReplication: Disabled when
				    * absent; always Enabled for a V1 rule */
	bool dm_absent;		   /* a V2 rule without DeleteMarkerReplication,
				    * which S3 refuses, for a note */
	bool existing_objects;	   /* ExistingObjectReplication: Disabled when
				    * absent */
	bool time_enabled;	   /* Destination.ReplicationTime.Status */
	unsigned time_minutes;	   /* ... .Time.Minutes, REPL_MINUTES_DEFAULT
				    * when absent */
	/* Each field of Destination given and not used, in this order:
	 * "Destination.StorageClass", .Account, .AccessControlTranslation,
	 * .EncryptionConfiguration, .Metrics; then NULL.  For a note; static
	 * strings. */
	const char *unused[REPL_UNUSED_DEST + 1];
	/* Each criterion of SourceSelectionCriteria Enabled and not done
	 * ("SourceSelectionCriteria.ReplicaModifications",
	 * "SourceSelectionCriteria.SseKmsEncryptedObjects"), then NULL.  For
	 * a note; static strings. */
	const char *unused_ssc[REPL_UNUSED_SSC + 1];
};

struct repl_config {
	const struct repl_rule *rules; /* in the order given */
	size_t nrules;		       /* 1..REPL_RULES_MAX */
	const char *role;	       /* Role, kept for get; NULL: none */
};

/*
 * Parse and validate the configuration in @json (@len bytes, need not end
 * in NUL).  Accepted as S3 accepts it:
 *
 *   - Role is kept (for repl_config_to_json()) and not used.
 *     SourceSelectionCriteria and Destination.StorageClass, .Account,
 *     .AccessControlTranslation, .EncryptionConfiguration and .Metrics
 *     are accepted and ignored, their types still checked; they are not
 *     kept, so repl_config_to_json() leaves them out, and the rule's
 *     unused and unused_ssc name each of them for a note.  A text wrapped as get-bucket-replication prints it,
 *     {"ReplicationConfiguration": {...}}, is unwrapped.
 *   - A V2 rule has a Filter: {} (every key), {"Prefix": P},
 *     {"Tag": {"Key": K, "Value": V}} or {"And": {"Prefix": P, "Tags":
 *     [...]}}.  A V1 rule has a rule-level "Prefix" instead, and then no
 *     Filter, Priority or DeleteMarkerReplication: it replicates delete
 *     markers, as S3's V1 rules do.  One configuration uses one schema.
 *
 * Refused with -EINVAL and one sentence in @err that names the place
 * ("Rules[1].Filter: ...", or "line 3, column 14: ..." for text that is
 * not JSON): a wrong type, an unknown field or value, a missing required
 * field (Rules, Status, Destination, Destination.Bucket, each Status), a
 * Filter with more than one of Prefix, Tag and And, a bad destination URL,
 * a duplicate ID or tag key, more than REPL_RULES_MAX rules, and two
 * enabled rules with the same Priority whose filters overlap (some object
 * could match both: one prefix starts the other, and no tag key is
 * required with two different values).  -ENOMEM when memory runs out.
 *
 * On success the caller frees *@out with repl_config_free(); on failure
 * *@out is NULL.
 */
int repl_config_parse(const char *json, size_t len, struct repl_config **out,
		      char *err, size_t errlen);

/* Free a configuration from repl_config_parse(); NULL is a no-op. */
void repl_config_free(struct repl_config *c);

/*
 * The canonical JSON text of @c: every rule with every default filled in,
 * generated IDs shown, destination URLs in canonical form, the filter in
 * its simplest shape ({}, Prefix, Tag, or And), fields in a fixed order,
 * indented, ending in a newline.  Parsing it gives an equal configuration.
 * Returns a NUL-terminated string the caller frees with free(), or NULL
 * when memory runs out.
 */
char *repl_config_to_json(const struct repl_config *c);

/* Whether @a and @b are the same configuration, field by field (the
 * ignored fields are not kept, so they do not count). */
bool repl_config_equal(const struct repl_config *a,
		       const struct repl_config *b);

/* The rule of @c with ID @id, or NULL; it belongs to @c. */
const struct repl_rule *repl_config_rule(const struct repl_config *c,
					 const char *id);

/* ---- Matching ------------------------------------------------------- */

/*
 * Whether rule @r selects an object: @r is enabled, @key starts with its
 * prefix, and the object's tags (@tags, @ntags pairs, owned by the
 * caller; NULL when @ntags is 0) include every tag @r names, key and value
 * alike.
 */
bool repl_rule_match(const struct repl_rule *r, const char *key,
		     const struct repl_tag *tags, size_t ntags);

/*
 * Where a version of @key with tags @tags goes, as S3 decides it: to
 * every destination some enabled rule of @c selects it for.  When several
 * rules that select it name the same destination (equal canonical URLs),
 * the one with the highest Priority wins, and its DeleteMarkerReplication
 * and other settings apply (a tie, which parsing refuses, goes to the
 * rule that comes first).
 *
 * Fills @out (room for @outcap pointers; c->nrules is always enough) with
 * the winning rule for each destination, in the order the destinations
 * first appear in @c, and returns how many, 0 when none.  The rules belong
 * to @c.  Returns -ENOSPC when @outcap is too small.
 */
int repl_config_destinations(const struct repl_config *c, const char *key,
			     const struct repl_tag *tags, size_t ntags,
			     const struct repl_rule **out, size_t outcap);

#endif
