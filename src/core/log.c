/* log.c: leveled one-line logging to stderr. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "sd_log.h"
#include "sd_time.h"

static volatile sd_log_level current = SD_LOG_INFO;
static const char *const names[] = {"error", "warn", "info", "debug"};

void sd_log_set_level(sd_log_level lvl) { current = lvl; }
sd_log_level sd_log_get_level(void) { return current; }

int sd_log_parse_level(const char *s, sd_log_level *out)
{
	for (int i = 0; i <= SD_LOG_DEBUG; i++)
		if (strcmp(s, names[i]) == 0) {
			*out = (sd_log_level)i;
			return 0;
		}
	if (strcmp(s, "warning") == 0) {
		*out = SD_LOG_WARN;
		return 0;
	}
	return -1;
}

void sd_log(sd_log_level lvl, const char *fmt, ...)
{
	if (lvl > current)
		return;
	char line[2048], ts[SD_TIME_LEN];
	sd_time_now(ts);
	int n = snprintf(line, sizeof line, "%s %s sessiond: ", ts, names[lvl]);
	va_list ap;
	va_start(ap, fmt);
	int m = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
	va_end(ap);
	size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
	if (len > sizeof line - 2)
		len = sizeof line - 2;
	line[len++] = '\n';
	ssize_t w = write(STDERR_FILENO, line, len);
	(void)w;
}
