/* sessionctl.c: the entry point of the administration tool. Owns the
 * global options (--data-dir, --json), the usage texts and the table of
 * commands; picks the command, lets it run and returns its status. The
 * commands live in ctl_view.c (list, show, stats, export), ctl_maint.c
 * (fsck, gc) and ctl_import.c; their shared helpers in ctl_util.c. The only
 * place that exits. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "sd_ctl.h"
#include "sd_layout.h"
#include "sd_version.h"

static const struct command {
	const char *name;
	ctl_cmd_fn fn;
	const char *usage;
} commands[] = {
	{"list", ctl_list,
	 "Usage: sessionctl [--data-dir DIR] list [OPTION]...\n"
	 "One row per session: key, version, size, created, updated, expires (UTC;\n"
	 "\"-\" when the session has no expiry).\n\n"
	 "  --updated-before T   only sessions updated before T\n"
	 "  --updated-after T    only sessions updated at or after T\n"
	 "  --sort FIELD         key (default, A-Z), updated (oldest first) or size\n"
	 "                       (largest first)\n"
	 "  --reverse            reverse the order\n"
	 "  --limit N            print at most N rows\n"
	 "  --json               a JSON array instead of a table\n\n"
	 "T is an RFC 3339 time (2026-11-26T20:00:00Z) or a duration meaning that long\n"
	 "ago (90s, 15m, 12h, 30d, 2w).\n"},
	{"show", ctl_show,
	 "Usage: sessionctl [--data-dir DIR] show KEY [--raw | --json]\n"
	 "The session document, pretty-printed.\n\n"
	 "  --raw    the file's bytes exactly as stored (also for a damaged file)\n"
	 "  --json   the document on one line\n"},
	{"stats", ctl_stats,
	 "Usage: sessionctl [--data-dir DIR] stats [--json]\n"
	 "Number of sessions and of their spares (the previous version a save keeps),\n"
	 "the bytes of each and their total, the largest session, how long ago they\n"
	 "were updated (within 1h, 1d, 7d, 30d, older), temporary files present,\n"
	 "damaged and stray entries.\n"},
	{"fsck", ctl_fsck,
	 "Usage: sessionctl [--data-dir DIR] fsck [--repair] [--json]\n"
	 "Check every entry of the store: each session file must parse as JSON, have\n"
	 "the required fields with the right types, carry its own key (the file name\n"
	 "and the fan-out folder), version >= 1; anything else is a stray. Temporary\n"
	 "files older than a minute were left by a crash.\n\n"
	 "  --repair   move damaged and stray entries to DATA_DIR/quarantine/ (nothing\n"
	 "             is deleted) and remove temporary files older than a minute\n"
	 "  --json     the findings as JSON\n\n"
	 "Exit status: 0 when the store is clean, 1 when anything was found (also when\n"
	 "--repair fixed it all: run fsck again to confirm).\n"},
	{"gc", ctl_gc,
	 "Usage: sessionctl [--data-dir DIR] gc (--older-than DURATION | --expired) [--dry-run] [--force] [--json]\n"
	 "Delete the sessions whose \"updated\" time is older than DURATION (90s, 15m,\n"
	 "12h, 30d, 2w), or with --expired those past their \"expires\" time (what\n"
	 "sessiond's sweeper does on its own). Each deletion takes the session's lock,\n"
	 "as a save does, and checks the age or expiry again under it: a session\n"
	 "saved (or given a later expiry) meanwhile is kept.\n\n"
	 "  --older-than DURATION   delete sessions not updated for that long, with its\n"
	 "                          unit; under a minute only with --force\n"
	 "  --expired               delete sessions past their expiry\n"
	 "  --dry-run               list what would be deleted, delete nothing (run\n"
	 "                          it first)\n"
	 "  --force                 allow a DURATION under a minute\n"
	 "  --json                  the outcome as JSON\n"},
	{"export", ctl_export,
	 "Usage: sessionctl [--data-dir DIR] export [--updated-after T] [--bucket XY]\n"
	 "Every session as one JSON document per line (JSON Lines) on stdout, each\n"
	 "file read whole once. Damaged files are reported on stderr and skipped\n"
	 "(exit status 1).\n\n"
	 "  --updated-after T   only sessions updated at or after T (RFC 3339 or a\n"
	 "                      duration meaning that long ago)\n"
	 "  --bucket XY         only the sessions whose key starts with XY (any case)\n"},
	{"import", ctl_import,
	 "Usage: sessionctl [--data-dir DIR] import [--force] [--bucket XY [--prune]] [--json] < FILE.jsonl\n"
	 "Read JSON Lines (as export writes them) from stdin; validate each document\n"
	 "and write it with the store's atomic create, keeping its version and\n"
	 "timestamps. Creates the store when it does not exist.\n\n"
	 "  --force   overwrite existing sessions (under their lock) instead of\n"
	 "            skipping them\n"
	 "  --bucket XY  accept only sessions of bucket XY (keys starting with XY);\n"
	 "            others are rejected\n"
	 "  --prune   with --bucket and --force: the input is the whole bucket, so\n"
	 "            remove (under their lock) XY's sessions it does not list; only\n"
	 "            after the whole input was read with nothing rejected\n"
	 "  --json    the report as JSON\n\n"
	 "Exit status 1 when any line was rejected; the report gives their numbers.\n"},
	{"bucket", ctl_bucket,
	 "Usage: sessionctl [--data-dir DIR] bucket (freeze|thaw|moved) XY | state [XY] [--json]\n"
	 "The node-local freeze of a bucket (the sessions whose key starts with XY),\n"
	 "for moving it to another node (docs/cluster.md). While a bucket is frozen or\n"
	 "moved, every write to it (sessiond's saves, deletes and copies, import, gc,\n"
	 "the sweeper) is refused with 503 busy and Retry-After: 1; loads still work.\n\n"
	 "  freeze XY   returns only when no write to XY is in progress in any process\n"
	 "              on this data dir; none starts after it\n"
	 "  thaw XY     writes to XY work again\n"
	 "  moved XY    the move is done: freeze XY for good and move sessions/XY aside\n"
	 "              to DATA_DIR/moved/XY.<time>/ (keep it until the next backup)\n"
	 "  state [XY]  XY's state (open, frozen, moved); without XY, every bucket\n"
	 "              that is not open\n"},
	{"manifest", ctl_manifest,
	 "Usage: sessionctl [--data-dir DIR] manifest --bucket XY [--json]\n"
	 "One line per session of bucket XY, sorted by key: key, version and the\n"
	 "sha256 of the document as export writes it. Two stores hold the same bucket\n"
	 "when their manifests are identical (scripts/move-bucket compares them).\n"},
	{"token", ctl_token,
	 "Usage: sessionctl [--data-dir DIR] token KEY [--secret-file PATH] [--json]\n"
	 "The session's write token (edits; what instantiate answered as \"token\") and\n"
	 "read token (loads and copies under --access private), derived from the\n"
	 "server secret: to re-issue a lost edit link. Treat the output as a password.\n\n"
	 "  --secret-file PATH   the secret sessiond uses (SESSIOND_SECRET_FILE, default\n"
	 "                       DATA_DIR/secret); it is read, never created\n"
	 "  --json               {\"key\",\"token\",\"read_token\"} on one line\n"},
};

#define N_COMMANDS (sizeof commands / sizeof commands[0])

static const char usage_text[] =
	"Usage: sessionctl [--data-dir DIR] [--json] COMMAND [OPTION]...\n"
	"Inspect and maintain a sessiond store; safe while sessiond is serving (same\n"
	"layout, same locks, same atomic writes).\n\n"
	"  --data-dir DIR   the store (SESSIOND_DATA_DIR, default " SD_DATA_DIR_DEFAULT ")\n"
	"  --json           JSON output instead of a table\n"
	"  --help           this text; sessionctl COMMAND --help for a command's\n"
	"  --version        the version\n\n"
	"Commands:\n"
	"  list     the sessions, filtered and sorted\n"
	"  show     one session's document\n"
	"  stats    counts, sizes, ages\n"
	"  fsck     check (and --repair) every file\n"
	"  gc       delete sessions not updated for a while, or expired ones\n"
	"  export   every session as JSON Lines on stdout\n"
	"  import   JSON Lines from stdin into the store\n"
	"  token    a session's tokens (needs the server secret)\n"
	"  bucket   freeze, thaw, mark moved or show a bucket (moving it to a node)\n"
	"  manifest key, version and sha256 of each session of a bucket\n\n"
	"Exit status: 0 success, 1 problems found or an error, 2 bad usage.\n";

static const struct command *find_command(const char *name)
{
	for (size_t i = 0; i < N_COMMANDS; i++)
		if (strcmp(commands[i].name, name) == 0)
			return &commands[i];
	return NULL;
}

/* 1 when the command's arguments ask for help (before any "--"). */
static int wants_help(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0)
			return 0;
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
			return 1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"data-dir", required_argument, 0, 'd'},
		{"json", no_argument, 0, 'j'},
		{"help", no_argument, 0, 'h'},
		{"version", no_argument, 0, 'V'},
		{0, 0, 0, 0},
	};
	sd_ctl c = {.cmd = NULL};
	const char *dir = getenv("SESSIOND_DATA_DIR");
	int ch;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, "+:hV", opts, NULL)) != -1) {
		switch (ch) {
		case 'd':
			dir = optarg;
			break;
		case 'j':
			c.json = 1;
			break;
		case 'h':
			fputs(usage_text, stdout);
			return CTL_OK;
		case 'V':
			printf("sessionctl %s\n", sd_version);
			return CTL_OK;
		default:
			return ctl_bad_option(&c, ch, argv);
		}
	}
	if (optind >= argc)
		return ctl_usage_error(&c, "no command given");
	const char *name = argv[optind];
	if (strcmp(name, "help") == 0) {
		const struct command *h = optind + 1 < argc ? find_command(argv[optind + 1]) : NULL;
		fputs(h ? h->usage : usage_text, stdout);
		return CTL_OK;
	}
	const struct command *cmd = find_command(name);
	if (!cmd)
		return ctl_usage_error(&c, "unknown command '%s'", name);
	int sub_argc = argc - optind;
	char **sub_argv = argv + optind;
	if (wants_help(sub_argc, sub_argv)) {
		fputs(cmd->usage, stdout);
		return CTL_OK;
	}
	if (!dir || !*dir)
		dir = SD_DATA_DIR_DEFAULT;
	c.data_dir = dir;
	c.cmd = cmd->name;
	int st = cmd->fn(&c, sub_argc, sub_argv);
	sd_store_close(c.store);
	return st;
}
