/* sd_log: one line per event on stderr, with an RFC 3339 timestamp, the
 * level and the message. Thread-safe (one write(2) per line). */
#ifndef SD_LOG_H
#define SD_LOG_H

typedef enum { SD_LOG_ERROR = 0, SD_LOG_WARN, SD_LOG_INFO, SD_LOG_DEBUG } sd_log_level;

void sd_log_set_level(sd_log_level lvl);
sd_log_level sd_log_get_level(void);
/* Parse "error", "warn", "info" or "debug"; returns 0 on success. */
int sd_log_parse_level(const char *s, sd_log_level *out);
void sd_log(sd_log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define sd_log_error(...) sd_log(SD_LOG_ERROR, __VA_ARGS__)
#define sd_log_warn(...) sd_log(SD_LOG_WARN, __VA_ARGS__)
#define sd_log_info(...) sd_log(SD_LOG_INFO, __VA_ARGS__)
#define sd_log_debug(...) sd_log(SD_LOG_DEBUG, __VA_ARGS__)

#endif
