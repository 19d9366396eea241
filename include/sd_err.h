/* sd_err: the one error type of sessiond. Each value names one outcome;
 * several outcomes may share an HTTP status and API code, and the table in
 * err.c is the one place that says which. Every module returns an sd_err;
 * only http.c turns it into a status line and an error body, through
 * sd_err_status() and sd_err_code(). An sd_error record carries an outcome
 * with the errno that caused it and a formatted message (jansson's
 * json_error_t is the model). */
#ifndef SD_ERR_H
#define SD_ERR_H

typedef enum sd_err {
	SD_OK = 0,
	SD_ERR_BAD_REQUEST,   /* body or query well-formed JSON but wrong shape */
	SD_ERR_BAD_JSON,      /* body is not JSON (message names line/column) */
	SD_ERR_BAD_KEY,       /* key missing or not 8 of [A-Za-z0-9] */
	SD_ERR_NOT_FOUND,     /* no such session, or no such path */
	SD_ERR_CONFLICT,      /* body "version" differs from the stored one */
	SD_ERR_PRECONDITION,  /* If-Match differs from the stored version */
	SD_ERR_TOO_LARGE,     /* body over --max-body */
	SD_ERR_MEDIA_TYPE,    /* Content-Type neither application/json nor text/plain */
	SD_ERR_METHOD,        /* method not allowed on this path */
	SD_ERR_BUSY,          /* lock timeout, every key draw collided, or the
			         memory pool is spent: retry shortly */
	SD_ERR_STORAGE_FULL,  /* ENOSPC / EDQUOT while writing */
	SD_ERR_INTERNAL,      /* any other I/O or allocation failure */
	SD_ERR_EXISTS,        /* store: create found the key taken (internal) */
	SD_ERR_CORRUPT,       /* store: a file did not parse as a session */
	SD_ERR_UNAUTHORIZED,  /* token missing or wrong (401, WWW-Authenticate: Bearer) */
	SD_ERR_FORBIDDEN,     /* a POST from an Origin that is not allowed */
	SD_ERR_MISDIRECTED,   /* the shard table gives the key's bucket to another node (421) */
	SD_ERR_RATE_LIMITED,  /* the client address is over the miss limit */
	SD_ERR_UNSYNCED,      /* store: the new file is in place (past the commit
			         point) but the folder fsync failed */
	SD_ERR_VERSION_LIMIT, /* doc: the session is at the largest version */
	SD_ERR_TOO_YOUNG,     /* store: a temporary file is too young to be a
			         crash's leftover (a write may still own it) */
	SD_ERR_NOT_IN_STORE,  /* store: a path is not an entry of DATA_DIR/sessions
			         of the kind asked for */
	SD_ERR_NAMES_EXHAUSTED, /* store: every quarantine name for an entry is taken */
	SD_ERR_BAD_SECRET,    /* token: the secret file is unusable (mode, size, type) */
	SD_ERR_BAD_CONFIG,    /* a configuration file (the shard table, --node-id) is
			         unusable: the operator's to fix */
	SD_ERR_FROZEN,        /* the key's bucket is frozen for a move (503, Retry-After: 1) */
	SD_ERR__COUNT
} sd_err;

/* HTTP status for an error (200 for SD_OK). */
int sd_err_status(sd_err e);
/* The API error code string, e.g. "bad_key". Static storage. */
const char *sd_err_code(sd_err e);
/* A default human sentence for the error. Static storage. */
const char *sd_err_message(sd_err e);
/* The Retry-After (seconds) of an answer with HTTP status status, 0 for
 * none: every 503 has one, whichever outcome or endpoint gave it (429
 * computes its own from the miss limit). */
int sd_status_retry_after(int status);
/* Map an errno from a write path: ENOSPC/EDQUOT to SD_ERR_STORAGE_FULL,
 * anything else to SD_ERR_INTERNAL. */
sd_err sd_err_from_errno(int errnum);

/* Messages that carry detail (parse positions, field names) use this size. */
#define SD_MSG_MAX 256

/* An outcome with its cause, filled by the function that failed. */
typedef struct sd_error {
	sd_err code;          /* the outcome; SD_OK when nothing failed */
	int sys_errno;        /* errno of the system call that failed, 0: none */
	char msg[SD_MSG_MAX]; /* what happened, in words; "" when nothing failed */
} sd_error;

/* Fill *er (NULL: nothing is filled) with code, sys_errno and a message
 * formatted as printf does, truncated to SD_MSG_MAX. Returns code, so a
 * failure is reported and returned in one statement. */
sd_err sd_error_set(sd_error *er, sd_err code, int sys_errno, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* Format a message into a bare message buffer of SD_MSG_MAX bytes (NULL:
 * nothing), as printf does, truncated. */
void sd_msgf(char *msg, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
