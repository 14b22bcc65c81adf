/*
 * test_s3.c - unit tests of the S3 destination's pieces:
 *
 * 1. INI files as the AWS tools read them (sections, comments, nested
 *    settings, '#' inside values, bad lines);
 * 2. credentials and configuration: the environment, profiles in the
 *    credentials file, [profile NAME] in the config file, region and
 *    endpoint_url, an explicit profile that ignores the environment, a
 *    missing profile;
 * 3. the remotes file: the directory it lives in, add / remove, mode 0600,
 *    the lock, bad files and bad settings;
 * 4. XML answers: errors (RGW's, with an empty <Message/>, and AWS's with
 *    a <Region>), versioning status, upload lists, version lists, and a
 *    document with entities that must not expand;
 * 5. which errors fail fast (errno by status and code);
 * 6. URLs: path-style and virtual-hosted, keys with spaces and UTF-8,
 *    sorted queries;
 * 7. requests against a small HTTP server on 127.0.0.1 (a thread of the
 *    test): what is signed and sent, how answers become errnos, and that no
 *    secret or token appears in any error string, even when a server
 *    echoes them.
 *
 * Each test runs in its own process (Criterion forks), so it may set the
 * environment freely; every test starts from a clean one (setup()).
 */
#include "replicator/dest.h"
#include "replicator/s3_client.h"
#include "replicator/s3_conf.h"
#include "tests/unit/helpers.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>

static char dir[64];

#define SECRET "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
#define TOKEN  "FQoGZXIvYXdzEXAMPLETOKEN+with/slashes=="

static void clean_env(void)
{
	static const char *vars[] = {
		"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
		"AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_PROFILE",
		"AWS_DEFAULT_PROFILE", "AWS_REGION", "AWS_DEFAULT_REGION",
		"AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3",
		"AWS_SHARED_CREDENTIALS_FILE", "AWS_CONFIG_FILE",
		"REPLICAFS_CONFIG_DIR", "XDG_CONFIG_HOME",
		"REPLICAFS_TEST_S3_SEND_BPS",
	};
	size_t i;

	for (i = 0; i < sizeof(vars) / sizeof(vars[0]); i++)
		unsetenv(vars[i]);
}

static void setup(void)
{
	char p[128];

	tmp_dir(dir);
	clean_env();
	setenv("HOME", dir, 1);
	snprintf(p, sizeof(p), "%s/.aws", dir);
	cr_assert_eq(mkdir(p, 0700), 0);
}

static void teardown(void)
{
	rm_rf(dir);
}

/* Write @text to DIR/@name. */
static void put_file(const char *name, const char *text)
{
	char p[256];
	FILE *f;

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	f = fopen(p, "w");
	cr_assert_not_null(f, "%s", p);
	fputs(text, f);
	cr_assert_eq(fclose(f), 0);
}

/* ---- 1. INI files --------------------------------------------------- */

TestSuite(ini, .init = setup, .fini = teardown, .timeout = 30);

struct seen {
	char text[2048];
};

static int collect(void *arg, const char *section, const char *key,
		   const char *value, int line)
{
	struct seen *s = arg;
	size_t n = strlen(s->text);

	if (!key) {
		snprintf(s->text + n, sizeof(s->text) - n, "<%s>@%d;",
			 section, line);
		return 0;
	}

	snprintf(s->text + n, sizeof(s->text) - n, "[%s]%s=%s@%d;", section,
		 key, value, line);
	return 0;
}

Test(ini, sections_comments_nested_values)
{
	const char *text = "# a comment\n"
			   "; another\n"
			   "top = before any section\n"
			   "[default]\n"
			   "Aws_Access_Key_Id = AKID\r\n"
			   "aws_secret_access_key=se#cret;x \n"
			   "\n"
			   "[profile  two words ]\n"
			   "region: eu-west-1\n"
			   "s3 =\n"
			   "    addressing_style = path\n"
			   "\tendpoint_url = http://x\n"
			   "output = json\n";
	struct seen s = { "" };

	cr_assert_eq(s3_ini_parse(text, strlen(text), collect, &s, NULL), 0);
	cr_expect_str_eq(s.text,
			 "[]top=before any section@3;"
			 "<default>@4;"
			 "[default]aws_access_key_id=AKID@5;"
			 "[default]aws_secret_access_key=se#cret;x@6;"
			 "<profile  two words>@8;"
			 "[profile  two words]region=eu-west-1@9;"
			 "[profile  two words]s3=@10;"
			 "[profile  two words]s3.addressing_style=path@11;"
			 "[profile  two words]s3.endpoint_url=http://x@12;"
			 "[profile  two words]output=json@13;");
}

Test(ini, bad_lines)
{
	struct seen s = { "" };
	int line = 0;

	cr_expect_eq(s3_ini_parse("[ok]\nno separator here\n", 21, collect,
				  &s, &line), -EINVAL);
	cr_expect_eq(line, 2);
	cr_expect_eq(s3_ini_parse("[unclosed\n", 10, collect, &s, &line),
		     -EINVAL);
	cr_expect_eq(line, 1);
	cr_expect_eq(s3_ini_parse("  indented = first\n", 19, collect, &s,
				  &line), -EINVAL);
	cr_expect_eq(s3_ini_parse("[s]\n= value\n", 12, collect, &s, &line),
		     -EINVAL);
	cr_expect_eq(line, 2);
}

static int stop_at_two(void *arg, const char *section, const char *key,
		       const char *value, int line)
{
	(void)arg;
	(void)section;
	(void)value;
	return key && line == 2 ? 42 : 0;
}

Test(ini, callback_stops)
{
	cr_expect_eq(s3_ini_parse("a=1\nb=2\nc=3\n", 12, stop_at_two, NULL,
				  NULL), 42);
}

Test(ini, sizes)
{
	uint64_t v;

	cr_expect_eq(s3_parse_size("16M", &v), 0);
	cr_expect_eq(v, 16ULL << 20);
	cr_expect_eq(s3_parse_size("5GiB", &v), 0);
	cr_expect_eq(v, 5ULL << 30);
	cr_expect_eq(s3_parse_size("100", &v), 0);
	cr_expect_eq(v, 100);
	cr_expect_eq(s3_parse_size("8kb", &v), 0);
	cr_expect_eq(v, 8192);
	cr_expect_eq(s3_parse_size("-1", &v), -EINVAL);
	cr_expect_eq(s3_parse_size("1T", &v), -EINVAL);
	cr_expect_eq(s3_parse_size("1Mx", &v), -EINVAL);
	cr_expect_eq(s3_parse_size("", &v), -EINVAL);
	cr_expect_eq(s3_parse_size("99999999999999999999G", &v), -EINVAL);
}

/* ---- 2. credentials and configuration -------------------------------- */

TestSuite(aws, .init = setup, .fini = teardown, .timeout = 30);

static const char *CREDS = "[default]\n"
			   "aws_access_key_id = AKIDDEFAULT\n"
			   "aws_secret_access_key = " SECRET "\n"
			   "[work]\n"
			   "aws_access_key_id = AKIDWORK\n"
			   "aws_secret_access_key = worksecret\n"
			   "aws_session_token = " TOKEN "\n"
			   "region = ignored-here\n";

static const char *CONFIG = "[default]\n"
			    "region = eu-central-1\n"
			    "[profile work]\n"
			    "region = ap-south-1\n"
			    "endpoint_url = https://s3.work.example\n"
			    "[profile cfgonly]\n"
			    "aws_access_key_id = AKIDCFG\n"
			    "aws_secret_access_key = cfgsecret\n"
			    "s3 =\n"
			    "  addressing_style = path\n"
			    "  endpoint_url = http://127.0.0.1:7480\n"
			    "[cfgonly]\n"
			    "region = not-a-profile-section\n";

Test(aws, default_profile_from_files)
{
	struct s3_aws_profile p;
	char err[512];

	put_file(".aws/credentials", CREDS);
	put_file(".aws/config", CONFIG);
	cr_assert_eq(s3_aws_profile_load(NULL, &p, err, sizeof(err)), 0, "%s",
		     err);
	cr_expect_str_eq(p.profile, "default");
	cr_expect_str_eq(p.access_key_id, "AKIDDEFAULT");
	cr_expect_str_eq(p.secret_access_key, SECRET);
	cr_expect_null(p.session_token);
	cr_expect_str_eq(p.region, "eu-central-1");
	cr_expect_null(p.endpoint_url);
	cr_expect_eq(p.path_style, -1);
	cr_expect_not_null(strstr(p.creds_source, "profile default in"));
	cr_expect_not_null(strstr(p.creds_source, ".aws/credentials"));
	cr_expect_null(strstr(p.creds_source, SECRET));
	s3_aws_profile_release(&p);
}

Test(aws, environment_first_unless_profile_named)
{
	struct s3_aws_profile p;
	char err[512];

	put_file(".aws/credentials", CREDS);
	put_file(".aws/config", CONFIG);
	setenv("AWS_ACCESS_KEY_ID", "AKIDENV", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "envsecret", 1);
	setenv("AWS_SESSION_TOKEN", "envtoken", 1);
	cr_assert_eq(s3_aws_profile_load(NULL, &p, err, sizeof(err)), 0);
	cr_expect_str_eq(p.access_key_id, "AKIDENV");
	cr_expect_str_eq(p.secret_access_key, "envsecret");
	cr_expect_str_eq(p.session_token, "envtoken");
	cr_expect_str_eq(p.creds_source, "the environment (AWS_ACCESS_KEY_ID)");
	s3_aws_profile_release(&p);

	/* A remote's own profile: the profile's keys, as aws --profile. */
	cr_assert_eq(s3_aws_profile_load("work", &p, err, sizeof(err)), 0);
	cr_expect_str_eq(p.access_key_id, "AKIDWORK");
	cr_expect_str_eq(p.session_token, TOKEN);
	cr_expect_str_eq(p.region, "ap-south-1");
	cr_expect_str_eq(p.endpoint_url, "https://s3.work.example");
	s3_aws_profile_release(&p);

	/* Only half of the keys in the environment: not used. */
	unsetenv("AWS_SECRET_ACCESS_KEY");
	cr_assert_eq(s3_aws_profile_load(NULL, &p, err, sizeof(err)), 0);
	cr_expect_str_eq(p.access_key_id, "AKIDDEFAULT");
	s3_aws_profile_release(&p);
}

Test(aws, aws_profile_and_config_only_keys)
{
	struct s3_aws_profile p;
	char err[512];

	put_file(".aws/credentials", CREDS);
	put_file(".aws/config", CONFIG);
	setenv("AWS_PROFILE", "cfgonly", 1);
	cr_assert_eq(s3_aws_profile_load(NULL, &p, err, sizeof(err)), 0);
	cr_expect_str_eq(p.profile, "cfgonly");
	cr_expect_str_eq(p.access_key_id, "AKIDCFG");
	cr_expect_str_eq(p.secret_access_key, "cfgsecret");
	cr_expect_not_null(strstr(p.creds_source, ".aws/config"));
	/* [cfgonly] without "profile" is not the profile in the config */
	cr_expect_null(p.region);
	cr_expect_str_eq(p.endpoint_url, "http://127.0.0.1:7480");
	cr_expect_eq(p.path_style, 1);
	s3_aws_profile_release(&p);
}

Test(aws, region_and_endpoint_from_environment)
{
	struct s3_aws_profile p;
	char err[512];

	put_file(".aws/config", CONFIG);
	setenv("AWS_DEFAULT_REGION", "us-west-2", 1);
	cr_assert_eq(s3_aws_profile_load(NULL, &p, err, sizeof(err)), 0);
	cr_expect_str_eq(p.region, "us-west-2");
	s3_aws_profile_release(&p);
	setenv("AWS_REGION", "sa-east-1", 1);
	setenv("AWS_ENDPOINT_URL", "http://generic", 1);
	cr_assert_eq(s3_aws_profile_load("work", &p, err, sizeof(err)), 0);
	cr_expect_str_eq(p.region, "sa-east-1");
	cr_expect_str_eq(p.endpoint_url, "http://generic");
	s3_aws_profile_release(&p);
	setenv("AWS_ENDPOINT_URL_S3", "http://s3-only", 1);
	cr_assert_eq(s3_aws_profile_load(NULL, &p, err, sizeof(err)), 0);
	cr_expect_str_eq(p.endpoint_url, "http://s3-only");
	/* no keys anywhere: not an error, but none */
	cr_expect_null(p.access_key_id);
	cr_expect_null(p.creds_source);
	s3_aws_profile_release(&p);
}

Test(aws, files_named_by_environment)
{
	struct s3_aws_profile p;
	char err[512], path[128];

	put_file("elsewhere", "[default]\naws_access_key_id = AKIDX\n"
			      "aws_secret_access_key = x\n");
	put_file("cfg", "[default]\nregion = il-central-1\n");
	setenv("AWS_SHARED_CREDENTIALS_FILE", "~/elsewhere", 1);
	snprintf(path, sizeof(path), "%s/cfg", dir);
	setenv("AWS_CONFIG_FILE", path, 1);
	cr_assert_eq(s3_aws_profile_load(NULL, &p, err, sizeof(err)), 0);
	cr_expect_str_eq(p.access_key_id, "AKIDX");
	cr_expect_str_eq(p.region, "il-central-1");
	s3_aws_profile_release(&p);
}

Test(aws, dev_null_is_an_empty_file)
{
	struct s3_aws_profile p;
	char err[512];

	setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null", 1);
	setenv("AWS_CONFIG_FILE", "/dev/null", 1);
	setenv("AWS_ACCESS_KEY_ID", "AKIDENV", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "envsecret", 1);
	cr_assert_eq(s3_aws_profile_load(NULL, &p, err, sizeof(err)), 0, "%s",
		     err);
	cr_expect_str_eq(p.access_key_id, "AKIDENV");
	cr_expect_null(p.region);
	s3_aws_profile_release(&p);
}

Test(aws, missing_profile_and_bad_files)
{
	struct s3_aws_profile p;
	char err[512];

	put_file(".aws/credentials", CREDS);
	cr_expect_eq(s3_aws_profile_load("nosuch", &p, err, sizeof(err)),
		     -ENOENT);
	cr_expect_not_null(strstr(err, "profile 'nosuch' is in neither"));
	s3_aws_profile_release(&p);
	/* No files at all, no profile named: no keys, no error. */
	rm_rf(dir);
	cr_assert_eq(mkdir(dir, 0700), 0);
	cr_assert_eq(s3_aws_profile_load(NULL, &p, err, sizeof(err)), 0);
	cr_expect_null(p.access_key_id);
	s3_aws_profile_release(&p);
	/* A bad line: its number, never its text (it may be a key). */
	put_file("creds", "[default]\naws_secret_access_key " SECRET "\n");
	{
		char path[128];

		snprintf(path, sizeof(path), "%s/creds", dir);
		setenv("AWS_SHARED_CREDENTIALS_FILE", path, 1);
	}
	cr_expect_eq(s3_aws_profile_load(NULL, &p, err, sizeof(err)),
		     -EINVAL);
	cr_expect_not_null(strstr(err, "line 2"), "%s", err);
	cr_expect_null(strstr(err, SECRET));
	s3_aws_profile_release(&p);
}

/* ---- 3. the remotes file --------------------------------------------- */

TestSuite(remotes, .init = setup, .fini = teardown, .timeout = 30);

Test(remotes, config_dir)
{
	char buf[256], want[256];

	snprintf(want, sizeof(want), "%s/.config/replicafs", dir);
	cr_assert_eq(s3_config_dir(buf, sizeof(buf)), 0);
	cr_expect_str_eq(buf, want);
	setenv("XDG_CONFIG_HOME", "/xdg", 1);
	cr_assert_eq(s3_config_dir(buf, sizeof(buf)), 0);
	cr_expect_str_eq(buf, "/xdg/replicafs");
	setenv("REPLICAFS_CONFIG_DIR", "/tmp/elsewhere", 1);
	cr_assert_eq(s3_remotes_path(buf, sizeof(buf)), 0);
	cr_expect_str_eq(buf, "/tmp/elsewhere/remotes");
	cr_expect_eq(s3_config_dir(buf, 8), -ENAMETOOLONG);
}

static struct s3_remote remote(const char *name, const char *endpoint)
{
	struct s3_remote r;

	s3_remote_init(&r);
	snprintf(r.name, sizeof(r.name), "%s", name);
	r.endpoint = (char *)endpoint;
	return r;
}

Test(remotes, add_list_remove)
{
	struct s3_remote r = remote("eu", "https://s3.eu-west-1.amazonaws.com");
	struct s3_remotes rs;
	const struct s3_remote *g;
	char path[128], lock[160], err[512];
	struct stat sb;

	snprintf(path, sizeof(path), "%s/conf/sub/remotes", dir);
	r.region = "eu-west-1";
	r.profile = "backup";
	r.path_style = 1;
	r.part_size = 64ULL << 20;
	cr_assert_eq(s3_remotes_add(path, &r, err, sizeof(err)), 0, "%s", err);
	r = remote("minio-1", "http://127.0.0.1:9000");
	r.ca_file = "/etc/ssl/private-ca.pem";
	r.parallel = 16;
	cr_assert_eq(s3_remotes_add(path, &r, err, sizeof(err)), 0, "%s", err);
	cr_expect_eq(s3_remotes_add(path, &r, err, sizeof(err)), -EEXIST);
	cr_expect_not_null(strstr(err, "remote minio-1 exists"));

	cr_assert_eq(stat(path, &sb), 0);
	cr_expect_eq(sb.st_mode & 0777, 0600);
	cr_assert_eq(s3_remotes_load(path, &rs, err, sizeof(err)), 0, "%s",
		     err);
	cr_assert_eq(rs.n, 2);
	g = s3_remotes_find(&rs, "eu");
	cr_assert_not_null(g);
	cr_expect_str_eq(g->endpoint, "https://s3.eu-west-1.amazonaws.com");
	cr_expect_str_eq(g->region, "eu-west-1");
	cr_expect_str_eq(g->profile, "backup");
	cr_expect_eq(g->path_style, 1);
	cr_expect_eq(g->part_size, 64ULL << 20);
	cr_expect_eq(g->multipart_threshold, S3_DEFAULT_MULTIPART_THRESHOLD);
	g = s3_remotes_find(&rs, "minio-1");
	cr_assert_not_null(g);
	cr_expect_str_eq(g->ca_file, "/etc/ssl/private-ca.pem");
	cr_expect_eq(g->parallel, 16);
	cr_expect_null(g->region);
	cr_expect_null(s3_remotes_find(&rs, "nosuch"));
	s3_remotes_release(&rs);

	/* Another command holds the lock. */
	snprintf(lock, sizeof(lock), "%s.lock", path);
	put_file("conf/sub/remotes.lock", "");
	cr_expect_eq(s3_remotes_remove(path, "eu", err, sizeof(err)), -EEXIST);
	cr_expect_not_null(strstr(err, "another replicafs command"));
	cr_assert_eq(unlink(lock), 0);

	cr_assert_eq(s3_remotes_remove(path, "eu", err, sizeof(err)), 0);
	cr_expect_eq(s3_remotes_remove(path, "eu", err, sizeof(err)), -ENOENT);
	cr_expect_neq(access(lock, F_OK), 0);
	cr_assert_eq(s3_remotes_load(path, &rs, err, sizeof(err)), 0);
	cr_expect_eq(rs.n, 1);
	cr_expect_str_eq(rs.v[0].name, "minio-1");
	s3_remotes_release(&rs);
}

Test(remotes, default_path_and_missing_file)
{
	struct s3_remote r = remote("default", "http://127.0.0.1:7480");
	struct s3_remotes rs;
	char err[512], path[160];
	struct stat sb;

	cr_assert_eq(s3_remotes_load(NULL, &rs, err, sizeof(err)), 0);
	cr_expect_eq(rs.n, 0);
	s3_remotes_release(&rs);
	cr_assert_eq(s3_remotes_add(NULL, &r, err, sizeof(err)), 0, "%s", err);
	snprintf(path, sizeof(path), "%s/.config/replicafs", dir);
	cr_assert_eq(stat(path, &sb), 0);
	cr_expect_eq(sb.st_mode & 0777, 0700);
}

Test(remotes, checks)
{
	struct s3_remote r;
	char err[512];

#define BAD(field_set, words)                                                 \
	do {                                                                  \
		r = remote("ok", "http://127.0.0.1:7480");                    \
		field_set;                                                    \
		cr_expect_eq(s3_remote_check(&r, err, sizeof(err)), -EINVAL,  \
			     #field_set);                                     \
		cr_expect_not_null(strstr(err, words), "%s", err);            \
	} while (0)
	r = remote("ok", "http://127.0.0.1:7480");
	cr_expect_eq(s3_remote_check(&r, err, sizeof(err)), 0, "%s", err);
	r.endpoint = "https://[::1]:9000/";
	cr_expect_eq(s3_remote_check(&r, err, sizeof(err)), 0, "%s", err);
	r.endpoint = NULL;	/* from the AWS configuration */
	cr_expect_eq(s3_remote_check(&r, err, sizeof(err)), 0, "%s", err);
	BAD(snprintf(r.name, sizeof(r.name), "-x"), "starts with");
	BAD(r.endpoint = "ftp://host", "http:// or https://");
	BAD(r.endpoint = "http://key:" SECRET "@host", "user name or password");
	BAD(r.endpoint = "http://host/bucket", "path");
	BAD(r.endpoint = "http://host:0", "port");
	BAD(r.endpoint = "http://ho st", "host");
	BAD(r.endpoint = "http://", "no host");
	BAD(r.region = "us east", "region");
	BAD(r.profile = "a b", "profile");
	BAD(r.ca_file = "a\nb", "CA file");
	BAD(r.part_size = 1 << 20, "part size");
	BAD(r.multipart_threshold = 6ULL << 30, "threshold");
	BAD(r.parallel = 0, "parallel");
#undef BAD
	/* A secret put in a URL is not repeated in the message. */
	r = remote("ok", "http://key:" SECRET "@host");
	cr_expect_eq(s3_remote_check(&r, err, sizeof(err)), -EINVAL);
	cr_expect_null(strstr(err, SECRET), "%s", err);
}

Test(remotes, bad_files)
{
	struct s3_remotes rs;
	char err[512], path[128];

	snprintf(path, sizeof(path), "%s/remotes", dir);
#define LOAD_BAD(text, words)                                                 \
	do {                                                                  \
		put_file("remotes", text);                                    \
		cr_expect_eq(s3_remotes_load(path, &rs, err, sizeof(err)),    \
			     -EINVAL, "%s", text);                            \
		cr_expect_not_null(strstr(err, words), "%s", err);            \
		s3_remotes_release(&rs);                                      \
	} while (0)
	LOAD_BAD("endpoint = http://x\n", "before the first [REMOTE]");
	LOAD_BAD("[a]\nendpoint = http://x\n[a]\nregion = r\n", "twice");
	LOAD_BAD("[a]\nendpoint = http://x\ncolour = blue\n",
		 "line 3: unknown setting 'colour'");
	LOAD_BAD("[a]\npath_style = maybe\n", "line 2");
	LOAD_BAD("[a]\nparallel = 1000\n", "line 2");
	LOAD_BAD("[-a]\n", "line 1");
	LOAD_BAD("[a]\njunk\n", "line 2");
	LOAD_BAD("[a]\nendpoint = gopher://x\n", "in ");
#undef LOAD_BAD
	put_file("remotes", "# comment\n\n[a]\nendpoint = http://x:1\n"
			    "insecure_tls = yes\nmultipart_threshold = 8M\n");
	cr_assert_eq(s3_remotes_load(path, &rs, err, sizeof(err)), 0, "%s",
		     err);
	cr_expect_eq(rs.v[0].insecure, 1);
	cr_expect_eq(rs.v[0].multipart_threshold, 8ULL << 20);
	s3_remotes_release(&rs);
}

/* ---- 4. XML ---------------------------------------------------------- */

TestSuite(xml, .timeout = 30);

Test(xml, errors)
{
	static const char rgw[] =
		"<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>"
		"SignatureDoesNotMatch</Code><Message></Message><RequestId>"
		"tx0000</RequestId><HostId>1016-default</HostId></Error>";
	static const char aws[] =
		"<Error><Code>AuthorizationHeaderMalformed</Code><Message>the "
		"region 'us-east-1' is wrong; expecting 'eu-west-1'</Message>"
		"<Region>eu-west-1</Region></Error>";
	char code[64], msg[256], region[64];

	cr_assert_eq(s3_xml_error(rgw, sizeof(rgw) - 1, code, sizeof(code),
				  msg, sizeof(msg), region, sizeof(region)),
		     0);
	cr_expect_str_eq(code, "SignatureDoesNotMatch");
	cr_expect_str_eq(msg, "");
	cr_expect_str_eq(region, "");
	cr_assert_eq(s3_xml_error(aws, sizeof(aws) - 1, code, sizeof(code),
				  msg, sizeof(msg), region, sizeof(region)),
		     0);
	cr_expect_str_eq(code, "AuthorizationHeaderMalformed");
	cr_expect_str_eq(region, "eu-west-1");
	cr_expect_eq(s3_xml_error("not xml", 7, code, sizeof(code), NULL, 0,
				  NULL, 0), -EINVAL);
	cr_expect_str_eq(code, "");
	cr_expect_eq(s3_xml_error("<Ok/>", 5, code, sizeof(code), NULL, 0,
				  NULL, 0), -EINVAL);
	cr_expect_eq(s3_xml_error("", 0, code, sizeof(code), NULL, 0, NULL, 0),
		     -EINVAL);
}

Test(xml, texts)
{
	static const char ver[] =
		"<VersioningConfiguration xmlns=\"http://s3.amazonaws.com/doc/"
		"2006-03-01/\"><Status>Enabled</Status></VersioningConfiguration>";
	static const char none[] = "<VersioningConfiguration/>";
	static const char loc[] = "<LocationConstraint xmlns=\"x\"/>";
	static const char up[] =
		"<InitiateMultipartUploadResult><Bucket>b</Bucket><Key>k</Key>"
		"<UploadId>2~abc.DEF-123</UploadId></InitiateMultipartUploadResult>";
	char out[64], small[4];

	cr_assert_eq(s3_xml_text(ver, sizeof(ver) - 1, "Status", out,
				 sizeof(out)), 0);
	cr_expect_str_eq(out, "Enabled");
	cr_expect_eq(s3_xml_text(none, sizeof(none) - 1, "Status", out,
				 sizeof(out)), -ENOENT);
	cr_assert_eq(s3_xml_text(loc, sizeof(loc) - 1, "LocationConstraint",
				 out, sizeof(out)), 0);
	cr_expect_str_eq(out, "");
	cr_assert_eq(s3_xml_text(up, sizeof(up) - 1, "UploadId", out,
				 sizeof(out)), 0);
	cr_expect_str_eq(out, "2~abc.DEF-123");
	cr_expect_eq(s3_xml_text(up, sizeof(up) - 1, "UploadId", small,
				 sizeof(small)), -E2BIG);
	cr_expect_eq(s3_xml_root(up, sizeof(up) - 1, out, sizeof(out)), 0);
	cr_expect_str_eq(out, "InitiateMultipartUploadResult");
	cr_expect_eq(s3_xml_text("<a", 2, "a", out, sizeof(out)), -EINVAL);
}

Test(xml, entities_do_not_expand)
{
	static const char bomb[] =
		"<?xml version=\"1.0\"?><!DOCTYPE e [<!ENTITY a \"aaaaaaaaaa\">"
		"<!ENTITY b \"&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;\">"
		"<!ENTITY c \"&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;\">"
		"<!ENTITY x SYSTEM \"file:///etc/passwd\">]>"
		"<Error><Code>&c;</Code><Message>&x;</Message></Error>";
	char code[64], msg[64];

	s3_xml_error(bomb, sizeof(bomb) - 1, code, sizeof(code), msg,
		     sizeof(msg), NULL, 0);
	cr_expect_null(strstr(msg, "root:"), "an external entity was read");
	cr_expect_lt(strlen(code), 64);
}

Test(xml, version_lists)
{
	static const char versions[] =
		"<ListVersionsResult><Name>b</Name><Prefix>k</Prefix>"
		"<DeleteMarker><Key>k</Key><VersionId>dm</VersionId><IsLatest>"
		"true</IsLatest></DeleteMarker><Version><Key>k</Key>"
		"<IsLatest>false</IsLatest></Version></ListVersionsResult>";
	static const char empty[] = "<ListVersionsResult><Name>b</Name>"
				    "</ListVersionsResult>";
	char key[64];
	int dm, latest;

	cr_assert_eq(s3_xml_first_version(versions, sizeof(versions) - 1, key,
					  sizeof(key), &dm, &latest), 0);
	cr_expect_str_eq(key, "k");
	cr_expect_eq(dm, 1);
	cr_expect_eq(latest, 1);
	cr_expect_eq(s3_xml_first_version(empty, sizeof(empty) - 1, key,
					  sizeof(key), &dm, &latest), -ENOENT);
}

/* ---- 5. which errors fail fast --------------------------------------- */

TestSuite(errors, .timeout = 30);

Test(errors, classification)
{
	static const struct {
		long status;
		const char *code;
		int err;
		int permanent;
	} cases[] = {
		{ 403, "AccessDenied", -EACCES, 1 },
		{ 403, "SignatureDoesNotMatch", -EACCES, 1 },
		{ 403, "InvalidAccessKeyId", -EACCES, 1 },
		{ 400, "ExpiredToken", -EACCES, 1 },
		{ 403, "RequestTimeTooSkewed", -EACCES, 1 },
		{ 403, "", -EACCES, 1 },
		{ 404, "NoSuchBucket", -ENOENT, 1 },
		{ 404, "", -ENOENT, 1 },
		{ 400, "AuthorizationHeaderMalformed", -EINVAL, 1 },
		{ 301, "PermanentRedirect", -EINVAL, 1 },
		{ 301, "", -EINVAL, 1 },
		{ 400, "InvalidArgument", -EINVAL, 1 },
		{ 400, "KeyTooLongError", -ENAMETOOLONG, 1 },
		{ 400, "EntityTooLarge", -EINVAL, 1 },
		{ 503, "SlowDown", -EAGAIN, 0 },
		{ 503, "", -EAGAIN, 0 },
		{ 500, "InternalError", -EIO, 0 },
		{ 502, "", -EIO, 0 },
		{ 504, "", -EIO, 0 },
		{ 400, "RequestTimeout", -ETIMEDOUT, 0 },
		{ 400, "BadDigest", -EIO, 0 },
		{ 400, "XAmzContentSHA256Mismatch", -EIO, 0 },
		{ 404, "NoSuchUpload", -EAGAIN, 0 },
		{ 409, "OperationAborted", -EAGAIN, 0 },
		{ 429, "", -EAGAIN, 0 },
		{ 307, "TemporaryRedirect", -EAGAIN, 0 },
		{ 200, "", 0, 0 },
		{ 204, NULL, 0, 0 },
	};
	size_t i;
	int e;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		e = s3_error_errno(cases[i].status, cases[i].code);
		cr_expect_eq(e, cases[i].err, "%ld %s: %d", cases[i].status,
			     cases[i].code ? cases[i].code : "(null)", e);
		if (e)
			cr_expect_eq(dest_error_permanent(e),
				     cases[i].permanent, "%ld %s",
				     cases[i].status, cases[i].code);
	}
	/* Transport errors can heal. */
	cr_expect_eq(dest_error_permanent(-ECONNREFUSED), 0);
	cr_expect_eq(dest_error_permanent(-ETIMEDOUT), 0);
	cr_expect_eq(dest_error_permanent(-ECONNRESET), 0);
	cr_expect_eq(dest_error_permanent(-EHOSTUNREACH), 0);
}

/* ---- 6. URLs --------------------------------------------------------- */

TestSuite(url, .timeout = 30);

static void url_is(const char *ep, int path_style, const char *bucket,
		   const char *key, const struct s3_kv *q, size_t nq,
		   const char *url, const char *host, const char *path)
{
	struct s3_url u;

	cr_assert_eq(s3_url_build(ep, path_style, bucket, key, q, nq, &u), 0,
		     "%s %s %s", ep, bucket, key);
	cr_expect_str_eq(u.url, url);
	cr_expect_str_eq(u.host, host);
	cr_expect_str_eq(u.path, path);
	s3_url_release(&u);
}

Test(url, path_and_virtual_hosted)
{
	struct s3_kv q[] = { { "versions", NULL }, { "prefix", "a b/ü" },
			     { "max-keys", "2" } };

	url_is("https://s3.eu-west-1.amazonaws.com", 0, "photos",
	       "2026/cat one.jpg", NULL, 0,
	       "https://photos.s3.eu-west-1.amazonaws.com/2026/cat%20one.jpg",
	       "photos.s3.eu-west-1.amazonaws.com", "/2026/cat%20one.jpg");
	url_is("https://s3.example.com:8443/", 1, "photos", "a+b/ü.txt", NULL,
	       0, "https://s3.example.com:8443/photos/a%2Bb/%C3%BC.txt",
	       "s3.example.com:8443", "/photos/a%2Bb/%C3%BC.txt");
	/* An IP address or localhost: path-style, whatever was asked. */
	url_is("http://127.0.0.1:7480", 0, "b1", "k", NULL, 0,
	       "http://127.0.0.1:7480/b1/k", "127.0.0.1:7480", "/b1/k");
	url_is("http://localhost:9000", 0, "b1", NULL, NULL, 0,
	       "http://localhost:9000/b1", "localhost:9000", "/b1");
	/* A bucket with dots over https: path-style (the certificate). */
	url_is("https://s3.amazonaws.com", 0, "my.bucket", "k", NULL, 0,
	       "https://s3.amazonaws.com/my.bucket/k", "s3.amazonaws.com",
	       "/my.bucket/k");
	/* The query, encoded and sorted. */
	url_is("http://127.0.0.1:7480", 1, "b1", NULL, q, 3,
	       "http://127.0.0.1:7480/b1?max-keys=2&prefix=a%20b%2F%C3%BC"
	       "&versions",
	       "127.0.0.1:7480", "/b1");
	/* Virtual-hosted bucket, no key. */
	url_is("https://s3.amazonaws.com", 0, "photos", "", NULL, 0,
	       "https://photos.s3.amazonaws.com/", "photos.s3.amazonaws.com",
	       "/");
	/* Keys keep their slashes, even doubled, and dots. */
	url_is("http://h", 1, "b1", "a//./b~c", NULL, 0,
	       "http://h/b1/a//./b~c", "h", "/b1/a//./b~c");
	/* The service. */
	url_is("http://h:1", 0, NULL, NULL, NULL, 0, "http://h:1/", "h:1",
	       "/");
}

Test(url, bad_endpoints)
{
	struct s3_url u;

	cr_expect_eq(s3_url_build("ftp://h", 1, "b", "k", NULL, 0, &u),
		     -EINVAL);
	cr_expect_eq(s3_url_build("http://u:p@h", 1, "b", "k", NULL, 0, &u),
		     -EINVAL);
	cr_expect_eq(s3_url_build("http://h/path", 1, "b", "k", NULL, 0, &u),
		     -EINVAL);
	cr_expect_eq(s3_url_build(NULL, 1, "b", "k", NULL, 0, &u), -EINVAL);
}

/* ---- 7. requests against a local server ------------------------------ */

/* A server that answers one request per connection with a canned answer
 * and keeps the last request it read. */
struct server {
	int fd;
	int port;
	pthread_t th;
	const char *answer;	/* the whole HTTP answer */
	char request[65536];	/* the last request's head and body */
	int requests;		/* how many were answered */
	int stop;
};

static void *serve(void *arg)
{
	struct server *s = arg;
	char buf[65536];
	size_t len;
	ssize_t n;
	int c;
	const char *end, *cl;

	while (!s->stop) {
		c = accept(s->fd, NULL, NULL);
		if (c < 0)
			break;
		len = 0;
		for (;;) {
			n = read(c, buf + len, sizeof(buf) - 1 - len);
			if (n <= 0)
				break;
			len += (size_t)n;
			buf[len] = '\0';
			end = strstr(buf, "\r\n\r\n");
			if (!end)
				continue;
			cl = strcasestr(buf, "\ncontent-length:");
			if (!cl || cl > end ||
			    len >= (size_t)(end + 4 - buf) +
					   strtoul(cl + 16, NULL, 10))
				break;
		}
		memcpy(s->request, buf, len + 1);
		if (write(c, s->answer, strlen(s->answer)) < 0)
			perror("write");
		s->requests++;
		close(c);
	}
	return NULL;
}

static void server_start(struct server *s, const char *answer)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t l = sizeof(a);

	memset(s, 0, sizeof(*s));
	s->answer = answer;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	s->fd = socket(AF_INET, SOCK_STREAM, 0);
	cr_assert_geq(s->fd, 0);
	cr_assert_eq(bind(s->fd, (struct sockaddr *)&a, sizeof(a)), 0);
	cr_assert_eq(listen(s->fd, 8), 0);
	cr_assert_eq(getsockname(s->fd, (struct sockaddr *)&a, &l), 0);
	s->port = ntohs(a.sin_port);
	cr_assert_eq(pthread_create(&s->th, NULL, serve, s), 0);
}

static void server_stop(struct server *s)
{
	s->stop = 1;
	shutdown(s->fd, SHUT_RDWR);
	close(s->fd);
	pthread_join(s->th, NULL);
}

static struct s3_client *client_for(int port, const char *region)
{
	struct s3_client_opts o = { 0 };
	struct s3_creds c = { "AKIDEXAMPLE", SECRET, TOKEN };
	struct s3_client *cl;
	char ep[64], err[256];

	snprintf(ep, sizeof(ep), "http://127.0.0.1:%d", port);
	o.endpoint = ep;
	o.region = region;
	o.name = "test";
	o.connect_timeout_ms = 2000;
	cr_assert_eq(s3_client_new(&o, &cl, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(s3_client_set_creds(cl, &c), 0);
	return cl;
}

TestSuite(request, .timeout = 60);

Test(request, signed_and_sent)
{
	static const char ok[] = "HTTP/1.1 200 OK\r\nx-amz-version-id: v123\r\n"
				 "ETag: \"abc\"\r\nx-amz-meta-mode: 33188\r\n"
				 "Content-Length: 0\r\nConnection: close\r\n\r\n";
	struct s3_kv h[] = { { "x-amz-meta-mode", "33188" },
			     { "content-md5", "XUFAKrxLKna5cZ2REBfFkg==" } };
	struct s3_request r = { .method = "PUT", .bucket = "bkt",
				.key = "dir/a b+ü.txt", .headers = h,
				.nheaders = 2, .what = "PutObject" };
	struct s3_response resp;
	struct server s;
	struct s3_client *c;
	char err[512];

	server_start(&s, ok);
	c = client_for(s.port, "region-x");
	r.body.buf = "hello";
	r.body.fd = -1;
	r.body.len = 5;
	cr_assert_eq(s3_request(c, &r, &resp, err, sizeof(err)), 0, "%s", err);
	cr_expect_eq(resp.status, 200);
	cr_expect_str_eq(resp.version_id, "v123");
	cr_expect_str_eq(resp.etag, "\"abc\"");
	cr_expect_str_eq(resp.meta_mode, "33188");
	s3_response_release(&resp);
	cr_expect_not_null(strstr(s.request, "PUT /bkt/dir/a%20b%2B%C3%BC.txt "
					     "HTTP/1.1\r\n"), "%s", s.request);
	/* the real payload hash: SHA-256 of "hello" */
	cr_expect_not_null(strstr(s.request,
				  "x-amz-content-sha256: 2cf24dba5fb0a30e26e83b"
				  "2ac5b9e29e1b161e5c1fa7425e73043362938b9824"));
	cr_expect_not_null(strstr(s.request, "Credential=AKIDEXAMPLE/"));
	cr_expect_not_null(strstr(s.request, "/region-x/s3/aws4_request"));
	cr_expect_not_null(strstr(s.request,
				  "x-amz-security-token: " TOKEN));
	cr_expect_not_null(strstr(s.request, "content-md5: XUFAKrx"));
	cr_expect_not_null(strstr(s.request, "\r\n\r\nhello"));
	cr_expect_null(strstr(s.request, SECRET));
	s3_client_free(c);
	server_stop(&s);
}

Test(request, body_from_fd_and_head)
{
	static const char nf[] = "HTTP/1.1 404 Not Found\r\nContent-Length: 0"
				 "\r\nConnection: close\r\n\r\n";
	struct s3_request r = { .method = "PUT", .bucket = "bkt", .key = "k" };
	struct s3_response resp;
	struct server s;
	struct s3_client *c;
	char err[512], path[128], sha[S3_SHA256_HEX_SIZE];
	int fd;

	tmp_dir(dir);
	snprintf(path, sizeof(path), "%s/body", dir);
	fd = open(path, O_RDWR | O_CREAT, 0600);
	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, "0123456789", 10), 10);
	server_start(&s, nf);
	c = client_for(s.port, "us-east-1");
	/* a HEAD's 404 is an answer: -ENOENT, code NotFound */
	r.method = "HEAD";
	r.body.fd = -1;
	cr_expect_eq(s3_request(c, &r, &resp, err, sizeof(err)), -ENOENT);
	cr_expect_str_eq(resp.code, "NotFound");
	s3_response_release(&resp);
	/* bytes 3..8 of a file, from an fd */
	cr_assert_eq(s3_sha256_hex("345678", 6, sha), 0);
	r.method = "PUT";
	r.body.fd = fd;
	r.body.off = 3;
	r.body.len = 6;
	r.payload_hash = sha;
	cr_expect_eq(s3_request(c, &r, &resp, err, sizeof(err)), -ENOENT);
	s3_response_release(&resp);
	cr_expect_not_null(strstr(s.request, "\r\n\r\n345678"), "%s",
			   s.request);
	close(fd);
	s3_client_free(c);
	server_stop(&s);
	rm_rf(dir);
}

Test(request, errors_have_no_secret)
{
	/* A server that echoes everything it should not. */
	static const char body[] =
		"<Error><Code>SignatureDoesNotMatch</Code><Message>we got "
		SECRET " and " TOKEN "</Message><StringToSign>" SECRET
		"</StringToSign></Error>";
	struct s3_request r = { .method = "GET", .bucket = "bkt",
				.what = "GetBucketVersioning" };
	struct s3_kv q[] = { { "versioning", NULL } };
	struct s3_response resp;
	struct server s;
	struct s3_client *c;
	char err[1024], buf[1024];

	snprintf(buf, sizeof(buf),
		 "HTTP/1.1 403 Forbidden\r\nContent-Length: %zu\r\n"
		 "Connection: close\r\n\r\n%s", strlen(body), body);
	server_start(&s, buf);
	c = client_for(s.port, "us-east-1");
	r.query = q;
	r.nquery = 1;
	cr_expect_eq(s3_request(c, &r, &resp, err, sizeof(err)), -EACCES);
	cr_expect_str_eq(resp.code, "SignatureDoesNotMatch");
	cr_expect_not_null(strstr(err, "HTTP 403 SignatureDoesNotMatch"), "%s",
			   err);
	cr_expect_not_null(strstr(err, "GetBucketVersioning bucket bkt"));
	cr_expect_null(strstr(err, SECRET), "%s", err);
	cr_expect_null(strstr(err, TOKEN), "%s", err);
	cr_expect_null(strstr(err, "wJalrXUtnFEMI"), "%s", err);
	cr_expect_not_null(strstr(s.request, "GET /bkt?versioning HTTP/1.1"),
			   "%s", s.request);
	s3_response_release(&resp);
	s3_client_free(c);
	server_stop(&s);
}

Test(request, region_and_throttling)
{
	static const char region[] =
		"<Error><Code>AuthorizationHeaderMalformed</Code><Message>"
		"wrong region</Message><Region>eu-west-1</Region></Error>";
	static const char slow[] =
		"<Error><Code>SlowDown</Code><Message>Please reduce your "
		"request rate.</Message></Error>";
	struct s3_request r = { .method = "GET", .bucket = "bkt",
				.what = "ListObjects" };
	struct s3_response resp;
	struct server s;
	struct s3_client *c;
	char err[1024], buf[1024];

	snprintf(buf, sizeof(buf),
		 "HTTP/1.1 400 Bad Request\r\nContent-Length: %zu\r\n"
		 "Connection: close\r\n\r\n%s", strlen(region), region);
	server_start(&s, buf);
	c = client_for(s.port, "us-east-1");
	cr_expect_eq(s3_request(c, &r, &resp, err, sizeof(err)), -EINVAL);
	cr_expect_not_null(strstr(err, "the bucket is in region eu-west-1, "
				       "but the remote signs for us-east-1"),
			   "%s", err);
	cr_expect(dest_error_permanent(-EINVAL));
	s3_response_release(&resp);
	snprintf(buf, sizeof(buf),
		 "HTTP/1.1 503 Slow Down\r\nContent-Length: %zu\r\n"
		 "Connection: close\r\n\r\n%s", strlen(slow), slow);
	cr_expect_eq(s3_request(c, &r, &resp, err, sizeof(err)), -EAGAIN);
	cr_expect_not_null(strstr(err, "HTTP 503 SlowDown: Please reduce"),
			   "%s", err);
	cr_expect(!dest_error_permanent(-EAGAIN));
	s3_response_release(&resp);
	s3_client_free(c);
	server_stop(&s);
}

Test(request, refused_and_no_credentials)
{
	struct s3_request r = { .method = "GET", .bucket = "bkt" };
	struct s3_response resp;
	struct server s;
	struct s3_client *c;
	int port;
	char err[512];

	/* A port where nothing listens any more. */
	server_start(&s, "");
	port = s.port;
	server_stop(&s);
	c = client_for(port, "us-east-1");
	cr_expect_eq(s3_request(c, &r, &resp, err, sizeof(err)),
		     -ECONNREFUSED);
	cr_expect_not_null(strstr(err, "remote test: GET bucket bkt"), "%s",
			   err);
	cr_expect_null(strstr(err, SECRET));
	s3_response_release(&resp);
	cr_assert_eq(s3_client_set_creds(c, NULL), 0);
	cr_expect_eq(s3_client_has_creds(c), 0);
	cr_expect_eq(s3_request(c, &r, &resp, err, sizeof(err)), -EACCES);
	cr_expect_not_null(strstr(err, "no credentials"));
	s3_response_release(&resp);
	s3_client_free(c);
}

/* ---- the destination's open ------------------------------------------ */

TestSuite(dest_s3, .init = setup, .fini = teardown, .timeout = 60);

Test(dest_s3, open_needs_a_remote)
{
	struct dest *d = NULL;
	char err[512], cfg[128];

	snprintf(cfg, sizeof(cfg), "%s/cfg", dir);
	setenv("REPLICAFS_CONFIG_DIR", cfg, 1);
	cr_expect_eq(dest_open("s3://nosuch/bucket", &d, err, sizeof(err)),
		     -ENOENT);
	cr_expect_not_null(strstr(err, "no remote named nosuch"), "%s", err);
	cr_expect_not_null(strstr(err, "replicafs remote add nosuch"));
	/* "default" needs no entry: the AWS configuration names it. */
	put_file(".aws/config", "[default]\nregion = eu-north-1\n"
				"endpoint_url = http://127.0.0.1:1\n");
	cr_assert_eq(dest_open("s3://default/bucket/pre", &d, err,
			       sizeof(err)), 0, "%s", err);
	/* no credentials anywhere: check() says what to set */
	cr_expect_eq(d->ops->check(d, err, sizeof(err)), -EACCES);
	cr_expect_not_null(strstr(err, "no credentials for remote default"),
			   "%s", err);
	cr_expect_not_null(strstr(err, "AWS_ACCESS_KEY_ID"));
	dest_close(d);
}

Test(dest_s3, check_against_a_server)
{
	static const char suspended[] =
		"<VersioningConfiguration><Status>Suspended</Status>"
		"</VersioningConfiguration>";
	struct s3_remote r;
	struct server s;
	struct dest *d = NULL;
	char err[512], cfg[128], ep[64], buf[512], url[64];

	snprintf(buf, sizeof(buf),
		 "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n"
		 "Connection: close\r\n\r\n%s", strlen(suspended), suspended);
	server_start(&s, buf);
	snprintf(cfg, sizeof(cfg), "%s/cfg", dir);
	setenv("REPLICAFS_CONFIG_DIR", cfg, 1);
	setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE", 1);
	setenv("AWS_SECRET_ACCESS_KEY", SECRET, 1);
	snprintf(ep, sizeof(ep), "http://127.0.0.1:%d", s.port);
	s3_remote_init(&r);
	snprintf(r.name, sizeof(r.name), "local");
	r.endpoint = ep;
	r.region = "region-l";
	cr_assert_eq(s3_remotes_add(NULL, &r, err, sizeof(err)), 0, "%s", err);
	snprintf(url, sizeof(url), "s3://local/bucket");
	cr_assert_eq(dest_open(url, &d, err, sizeof(err)), 0, "%s", err);
	cr_expect_eq(d->ops->check(d, err, sizeof(err)), -EINVAL);
	cr_expect_not_null(strstr(err, "versioning of bucket bucket on remote "
				       "local is not Enabled (it is "
				       "Suspended)"), "%s", err);
	cr_expect_null(strstr(err, SECRET));
	cr_expect_not_null(strstr(s.request, "/region-l/s3/aws4_request"));
	dest_close(d);
	server_stop(&s);
}

/*
 * Run the tests one at a time.  With several jobs at once, Criterion
 * 2.4.1's runner itself (the parent process, not a test) leaks 48 bytes
 * when these suites finish in some orders, and the harness fails a run on
 * any LeakSanitizer report.  One at a time, the file takes a few seconds.
 */
int main(int argc, char *argv[])
{
	struct criterion_test_set *tests = criterion_initialize();
	int result = 0;

	if (criterion_handle_args(argc, argv, true)) {
		criterion_options.jobs = 1;
		result = !criterion_run_all_tests(tests);
	}
	criterion_finalize(tests);
	return result;
}

Test(endpoint, one_server_under_several_names)
{
	cr_assert(s3_same_endpoint("http://127.0.0.1:8000",
				   "http://localhost:8000/"));
	cr_assert(s3_same_endpoint("http://[::1]:8000", "http://LocalHost:8000"));
	cr_assert(s3_same_endpoint("https://S3.Example.com",
				   "https://s3.example.com:443"));
	cr_assert(s3_same_endpoint("http://s3.example.com:80/",
				   "http://s3.example.com"));
	cr_assert(!s3_same_endpoint("http://127.0.0.1:8000",
				    "http://127.0.0.1:8001"));
	cr_assert(!s3_same_endpoint("http://s3.example.com",
				    "https://s3.example.com"));
	cr_assert(!s3_same_endpoint("http://127.0.0.2:8000",
				    "http://localhost:8000"));
	cr_assert(!s3_same_endpoint("http://a.example.com:8000",
				    "http://b.example.com:8000"));
	cr_assert(!s3_same_endpoint("http://h:0", "http://h"));
	cr_assert(s3_same_endpoint("not a url", "NOT A URL"));
}
