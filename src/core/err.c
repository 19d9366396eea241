/* err.c: the single table from sd_err to HTTP status, API code and a
 * default message. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include "sd_err.h"

static const struct {
	int status;
	const char *code;
	const char *message;
} table[SD_ERR__COUNT] = {
	[SD_OK] = {200, "ok", "OK."},
	[SD_ERR_BAD_REQUEST] = {400, "bad_request", "The request is not valid."},
	[SD_ERR_BAD_JSON] = {400, "bad_json", "The body is not valid JSON."},
	[SD_ERR_BAD_KEY] = {400, "bad_key", "The key must be exactly 8 letters or digits."},
	[SD_ERR_NOT_FOUND] = {404, "not_found", "No such session."},
	[SD_ERR_CONFLICT] = {409, "conflict", "The session has changed since that version."},
	[SD_ERR_PRECONDITION] = {412, "precondition_failed", "If-Match does not match the current version."},
	[SD_ERR_TOO_LARGE] = {413, "too_large", "The body is larger than the server accepts."},
	[SD_ERR_MEDIA_TYPE] = {415, "unsupported_media_type", "Send the body as application/json or text/plain."},
	[SD_ERR_METHOD] = {405, "method_not_allowed", "That method is not allowed here."},
	[SD_ERR_BUSY] = {503, "busy", "The session is busy; retry shortly."},
	[SD_ERR_STORAGE_FULL] = {507, "storage_full", "The server has no space left to store this; nothing was changed."},
	[SD_ERR_INTERNAL] = {500, "internal", "Internal error; the server log has the details. Load the session to see its state."},
	[SD_ERR_EXISTS] = {503, "busy", "Could not allocate a free key; retry."},
	[SD_ERR_CORRUPT] = {500, "internal", "The stored session is damaged; an administrator has been told."},
	[SD_ERR_UNAUTHORIZED] = {401, "unauthorized", "This needs the session's token: send Authorization: Bearer TOKEN, or \"token\" in the body."},
	[SD_ERR_FORBIDDEN] = {403, "forbidden", "Requests from this Origin are not allowed; nothing was changed."},
	[SD_ERR_MISDIRECTED] = {421, "misdirected", "This node does not own the bucket of this key; nothing was read or changed. Send keyed requests through the router."},
	[SD_ERR_RATE_LIMITED] = {429, "rate_limited", "Too many requests for unknown sessions or with wrong tokens from this address; retry after the time in Retry-After."},
	[SD_ERR_UNSYNCED] = {500, "internal", "The change is in place but the server could not confirm it is on disk; load the session to see its state."},
	[SD_ERR_VERSION_LIMIT] = {400, "bad_request", "The session has reached the largest version; instantiate a new one."},
	[SD_ERR_TOO_YOUNG] = {503, "busy", "The temporary file is too young to be a leftover; a write may still own it."},
	[SD_ERR_NOT_IN_STORE] = {400, "bad_request", "The path is not an entry of this store's sessions folder."},
	[SD_ERR_NAMES_EXHAUSTED] = {503, "busy", "Every quarantine name for the entry is taken."},
	[SD_ERR_BAD_SECRET] = {500, "internal", "The secret file is unusable."},
	[SD_ERR_BAD_CONFIG] = {500, "internal", "The server's configuration is unusable."},
	[SD_ERR_FROZEN] = {503, "busy", "The session's bucket is frozen while it moves to another node; nothing was changed, retry in a second."},
};

static int valid(sd_err e) { return e >= SD_OK && e < SD_ERR__COUNT; }

int sd_err_status(sd_err e) { return valid(e) ? table[e].status : 500; }
const char *sd_err_code(sd_err e) { return valid(e) ? table[e].code : "internal"; }
const char *sd_err_message(sd_err e) { return valid(e) ? table[e].message : table[SD_ERR_INTERNAL].message; }

/* A 503 is over in moments (a lock, a frozen bucket, the memory pool) or is
 * the operator's to fix (a disk); either way one second is when to ask again. */
int sd_status_retry_after(int status) { return status == 503 ? 1 : 0; }

sd_err sd_err_from_errno(int errnum)
{
	if (errnum == ENOSPC || errnum == EDQUOT)
		return SD_ERR_STORAGE_FULL;
	return SD_ERR_INTERNAL;
}

sd_err sd_error_set(sd_error *er, sd_err code, int sys_errno, const char *fmt, ...)
{
	if (!er)
		return code;
	er->code = code;
	er->sys_errno = sys_errno;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(er->msg, sizeof er->msg, fmt, ap);
	va_end(ap);
	return code;
}

void sd_msgf(char *msg, const char *fmt, ...)
{
	if (!msg)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, SD_MSG_MAX, fmt, ap);
	va_end(ap);
}
