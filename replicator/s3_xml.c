/*
 * s3_xml.c - reading S3's XML answers with libxml2.
 *
 * S3 answers in small XML documents: an <Error> with a <Code>, the
 * <Status> of a bucket's versioning, the <UploadId> of a new multipart
 * upload, a list of <Version>s.  Each function here parses
 * one document from memory into a tree (xmlReadMemory), walks it by local
 * element names (S3 puts its documents in a namespace, RGW sometimes does
 * not), copies out what it needs and frees the tree before returning.
 *
 * Safety: documents come from the network.  The parser is told to load
 * nothing from the network (XML_PARSE_NONET), not to substitute entities
 * (no XML_PARSE_NOENT, so no "billion laughs" or external entity can
 * expand), and to stay quiet (its errors would go to stderr otherwise).
 * Documents are at most S3_BODY_MAX bytes (the client keeps no more).
 *
 * libxml2 is initialised by s3_client.c before the first request; the
 * functions keep no state and are safe from any thread.
 */
#include "replicator/s3_client.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/tree.h>

#define PARSE_OPTS (XML_PARSE_NONET | XML_PARSE_NOERROR | \
		    XML_PARSE_NOWARNING | XML_PARSE_NOBLANKS)

/* The tree of @xml, or NULL when it is not XML.  Free with xmlFreeDoc(). */
static xmlDocPtr parse(const char *xml, size_t len)
{
	if (!xml || !len || len > INT_MAX)
		return NULL;
	return xmlReadMemory(xml, (int)len, "s3.xml", NULL, PARSE_OPTS);
}

static int is_named(xmlNodePtr n, const char *name)
{
	return n && n->type == XML_ELEMENT_NODE &&
	       !strcmp((const char *)n->name, name);
}

/* The first element named @name at or below @n, depth first. */
static xmlNodePtr find(xmlNodePtr n, const char *name)
{
	xmlNodePtr c, f;

	for (; n; n = n->next) {
		if (is_named(n, name))
			return n;
		if (n->type == XML_ELEMENT_NODE) {
			c = n->children;
			f = c ? find(c, name) : NULL;
			if (f)
				return f;
		}
	}
	return NULL;
}

/* The first child element of @n named @name, or NULL. */
static xmlNodePtr child(xmlNodePtr n, const char *name)
{
	for (n = n ? n->children : NULL; n; n = n->next)
		if (is_named(n, name))
			return n;
	return NULL;
}

/* Copy the text of @n into @out (@size bytes; "" for NULL).  0, or
 * -E2BIG when it does not fit (truncated). */
static int text_of(xmlNodePtr n, char *out, size_t size)
{
	xmlChar *t;
	size_t len;
	int ret = 0;

	if (!out || !size)
		return 0;
	out[0] = '\0';
	if (!n)
		return 0;
	t = xmlNodeGetContent(n);
	if (!t)
		return 0;
	len = strlen((const char *)t);
	if (len >= size) {
		len = size - 1;
		ret = -E2BIG;
	}
	memcpy(out, t, len);
	out[len] = '\0';
	xmlFree(t);
	return ret;
}

int s3_xml_error(const char *xml, size_t len, char *code, size_t codelen,
		 char *message, size_t msglen, char *region, size_t reglen)
{
	xmlDocPtr doc = parse(xml, len);
	xmlNodePtr root;
	int ret = -EINVAL;

	text_of(NULL, code, codelen);
	text_of(NULL, message, msglen);
	text_of(NULL, region, reglen);
	if (!doc)
		return -EINVAL;
	root = xmlDocGetRootElement(doc);
	if (is_named(root, "Error")) {
		text_of(child(root, "Code"), code, codelen);
		text_of(child(root, "Message"), message, msglen);
		text_of(child(root, "Region"), region, reglen);
		ret = 0;
	}
	xmlFreeDoc(doc);
	return ret;
}

int s3_xml_text(const char *xml, size_t len, const char *name, char *out,
		size_t outlen)
{
	xmlDocPtr doc = parse(xml, len);
	xmlNodePtr n;
	int ret;

	if (outlen)
		out[0] = '\0';
	if (!doc)
		return -EINVAL;
	n = find(xmlDocGetRootElement(doc), name);
	ret = n ? text_of(n, out, outlen) : -ENOENT;
	xmlFreeDoc(doc);
	return ret;
}

int s3_xml_root(const char *xml, size_t len, char *out, size_t outlen)
{
	xmlDocPtr doc = parse(xml, len);
	xmlNodePtr root;
	int ret = -EINVAL;

	if (outlen)
		out[0] = '\0';
	if (!doc)
		return -EINVAL;
	root = xmlDocGetRootElement(doc);
	if (root && root->name) {
		snprintf(out, outlen, "%s", (const char *)root->name);
		ret = 0;
	}
	xmlFreeDoc(doc);
	return ret;
}

int s3_xml_first_version(const char *xml, size_t len, char *key,
			 size_t keylen, int *is_delete_marker,
			 int *is_latest)
{
	xmlDocPtr doc = parse(xml, len);
	xmlNodePtr root, n;
	char flag[8];
	int ret = -ENOENT;

	*is_delete_marker = 0;
	*is_latest = 0;
	text_of(NULL, key, keylen);
	if (!doc)
		return -EINVAL;
	root = xmlDocGetRootElement(doc);
	if (!is_named(root, "ListVersionsResult")) {
		ret = -EINVAL;
		goto out;
	}
	for (n = root->children; n; n = n->next) {
		if (!is_named(n, "Version") && !is_named(n, "DeleteMarker"))
			continue;
		*is_delete_marker = is_named(n, "DeleteMarker");
		text_of(child(n, "IsLatest"), flag, sizeof(flag));
		*is_latest = !strcmp(flag, "true");
		ret = text_of(child(n, "Key"), key, keylen);
		break;
	}
out:
	xmlFreeDoc(doc);
	return ret;
}

int s3_xml_tagset(const char *xml, size_t len, s3_tag_cb cb, void *arg)
{
	xmlDocPtr doc = parse(xml, len);
	xmlNodePtr root, set, n;
	xmlChar *k, *v;
	int ret = 0;

	if (!doc)
		return -EINVAL;
	root = xmlDocGetRootElement(doc);
	if (!is_named(root, "Tagging")) {
		ret = -EINVAL;
		goto out;
	}
	set = child(root, "TagSet");
	for (n = set ? set->children : NULL; n && !ret; n = n->next) {
		if (!is_named(n, "Tag"))
			continue;
		k = child(n, "Key") ? xmlNodeGetContent(child(n, "Key"))
				    : NULL;
		v = child(n, "Value") ? xmlNodeGetContent(child(n, "Value"))
				      : NULL;
		if (k)
			ret = cb(arg, (const char *)k,
				 v ? (const char *)v : "");
		xmlFree(k);
		xmlFree(v);
	}
out:
	xmlFreeDoc(doc);
	return ret;
}

char *s3_xml_tagging_doc(const struct s3_kv *tags, size_t n)
{
	xmlDocPtr doc = xmlNewDoc(BAD_CAST "1.0");
	xmlNodePtr root, set, tag;
	xmlChar *mem = NULL;
	char *out = NULL;
	int size = 0;
	size_t i;

	if (!doc)
		return NULL;
	root = xmlNewNode(NULL, BAD_CAST "Tagging");
	if (!root)
		goto out;
	xmlDocSetRootElement(doc, root);
	xmlSetNs(root, xmlNewNs(root,
				BAD_CAST "http://s3.amazonaws.com/doc/2006-03-01/",
				NULL));
	set = xmlNewChild(root, NULL, BAD_CAST "TagSet", NULL);
	for (i = 0; set && i < n; i++) {
		/* xmlNewTextChild escapes; xmlNewChild would not */
		tag = xmlNewChild(set, NULL, BAD_CAST "Tag", NULL);
		if (!tag ||
		    !xmlNewTextChild(tag, NULL, BAD_CAST "Key",
				     BAD_CAST tags[i].name) ||
		    !xmlNewTextChild(tag, NULL, BAD_CAST "Value",
				     BAD_CAST tags[i].value))
			goto out;
	}
	if (!set)
		goto out;
	xmlDocDumpMemory(doc, &mem, &size);
	if (mem && size > 0)
		out = strndup((const char *)mem, (size_t)size);
out:
	xmlFree(mem);
	xmlFreeDoc(doc);
	return out;
}
