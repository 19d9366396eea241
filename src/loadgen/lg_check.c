/* lg_check.c: lost-update and mismatch accounting of the load generator,
 * and its loopback URL check (see lg_check.h). */
#include <arpa/inet.h>
#include <string.h>
#include <strings.h>
#include "lg_check.h"

void lg_owned_init(lg_owned *o, int64_t version, json_t *data)
{
	memset(o, 0, sizeof *o);
	o->version = version;
	o->data = data;
}

static void drop_alt(lg_owned *o)
{
	json_decref(o->alt_data);
	o->alt_data = NULL;
	o->alt_version = 0;
}

void lg_owned_free(lg_owned *o)
{
	drop_alt(o);
	json_decref(o->data);
	o->data = NULL;
}

static void set_state(lg_owned *o, int64_t version, json_t *data)
{
	json_decref(o->data);
	o->data = data;
	o->version = version;
	drop_alt(o);
}

lg_verdict lg_owned_saved(lg_owned *o, int64_t new_version, json_t *data)
{
	lg_verdict v = new_version == o->version + 1 ? LG_CHECK_OK : LG_CHECK_MISMATCH;
	set_state(o, new_version, data);
	return v;
}

void lg_owned_uncertain(lg_owned *o, json_t *data)
{
	drop_alt(o);
	o->alt_version = o->version + 1;
	o->alt_data = data;
}

static int same(const json_t *a, const json_t *b) { return a && b && json_equal(a, b); }

lg_verdict lg_owned_loaded(lg_owned *o, int64_t version, const json_t *data)
{
	if (o->alt_version && version == o->alt_version && same(data, o->alt_data)) {
		json_t *d = o->alt_data;
		o->alt_data = NULL;
		set_state(o, version, d);
		return LG_CHECK_OK;
	}
	if (version == o->version && same(data, o->data)) {
		drop_alt(o); /* the unanswered save did not happen */
		return LG_CHECK_OK;
	}
	lg_verdict v = version < o->version ? LG_CHECK_LOST : LG_CHECK_MISMATCH;
	set_state(o, version, data ? json_deep_copy(data) : json_null());
	return v;
}

lg_verdict lg_owned_conflict(lg_owned *o, int64_t cur_version, const json_t *cur_data)
{
	if (o->alt_version && cur_version == o->alt_version && same(cur_data, o->alt_data)) {
		json_t *d = o->alt_data;
		o->alt_data = NULL;
		set_state(o, cur_version, d);
		return LG_CHECK_OK;
	}
	lg_verdict v = cur_version < o->version ? LG_CHECK_LOST : LG_CHECK_MISMATCH;
	set_state(o, cur_version, cur_data ? json_deep_copy(cur_data) : json_null());
	return v;
}

void lg_counter_init(lg_counter *c) { memset(c, 0, sizeof *c); }

lg_verdict lg_counter_observed(lg_counter *c, int64_t floor, int64_t version, int64_t counter)
{
	lg_verdict v = LG_CHECK_OK;
	if (version < floor)
		v = LG_CHECK_LOST;
	else if (counter != version - 1)
		v = LG_CHECK_MISMATCH;
	if (version > c->floor)
		c->floor = version;
	return v;
}

lg_verdict lg_counter_acked(lg_counter *c, int64_t sent_version, int64_t new_version)
{
	c->acked++;
	if (new_version > c->floor)
		c->floor = new_version;
	return new_version == sent_version + 1 ? LG_CHECK_OK : LG_CHECK_MISMATCH;
}

void lg_counter_uncertain(lg_counter *c) { c->uncertain++; }

void lg_counter_final(const lg_counter *c, int64_t version, int64_t counter, uint64_t *lost,
		      uint64_t *mismatch)
{
	if (counter != version - 1)
		(*mismatch)++;
	if (counter < 0) {
		*lost += c->acked;
		return;
	}
	uint64_t n = (uint64_t)counter;
	if (n < c->acked)
		*lost += c->acked - n;
	else if (n > c->acked + c->uncertain)
		*mismatch += n - c->acked - c->uncertain;
}

int lg_url_is_loopback(const char *url)
{
	if (strncasecmp(url, "http://", 7) != 0)
		return 0;
	const char *h = url + 7, *end;
	char host[64];
	if (memchr(h, '@', strcspn(h, "/?#")))
		return 0; /* userinfo: refuse rather than guess */
	if (*h == '[') {
		end = strchr(h, ']');
		if (!end || (size_t)(end - h - 1) >= sizeof host)
			return 0;
		memcpy(host, h + 1, (size_t)(end - h - 1));
		host[end - h - 1] = '\0';
		end++;
	} else {
		size_t n = strcspn(h, ":/?#");
		if (n == 0 || n >= sizeof host)
			return 0;
		memcpy(host, h, n);
		host[n] = '\0';
		end = h + n;
	}
	if (*end && *end != ':' && *end != '/' && *end != '?' && *end != '#')
		return 0;
	if (strcasecmp(host, "localhost") == 0)
		return 1;
	struct in_addr a4;
	struct in6_addr a6;
	if (inet_pton(AF_INET, host, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	if (inet_pton(AF_INET6, host, &a6) == 1)
		return IN6_IS_ADDR_LOOPBACK(&a6);
	return 0;
}
