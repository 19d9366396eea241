# sessiond: plain GNU make with pkg-config.
#   make            build cgi-bin/sessiond, build/sessionctl, build/loadgen
#   make run        install what is missing, build, serve on 127.0.0.1:$(PORT)
#                   (LIMITS=off: no rate or miss limits, for load tests;
#                   CORS_ORIGIN=LIST: allowed origins, sessiond and nginx)
#   make test       install what is missing, run every test, then again under ASan+UBSan
#   make bench      measure against the ceilings (see README, Performance), on
#                   its own stack with the limits off (as LIMITS=off)
#   make crashcheck the power-loss checker, full form (tests/crash/README.md)
#   make SAN=1 ...  build into build/san with AddressSanitizer + UBSan

PORT     ?= 8080
DATA_DIR ?= $(CURDIR)/var
SAN      ?=
LIMITS   ?= on
CORS_ORIGIN ?=
CC       ?= cc

PKGS := fcgi jansson libsodium
pc_cflags = $(shell pkg-config --cflags $(1) 2>/dev/null)
pc_libs   = $(shell pkg-config --libs $(1) 2>/dev/null || echo $(2))

# Paths and messages are bounded on purpose; truncation there is handled.
WARN    := -Wall -Wextra -Werror -Wmissing-prototypes -Wstrict-prototypes -Wwrite-strings -Wshadow -Wno-format-truncation
CFLAGS  ?= -O2 -g
CFLAGS  += -std=gnu11 $(WARN) -Iinclude -D_GNU_SOURCE $(call pc_cflags,$(PKGS))
LDLIBS  := $(call pc_libs,jansson,-ljansson) $(call pc_libs,libsodium,-lsodium) -lpthread

ifeq ($(SAN),1)
O       := build/san
CFLAGS  += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
LDFLAGS += -fsanitize=address,undefined
SESSIOND := $(O)/sessiond
else
O       := build
SESSIOND := cgi-bin/sessiond
endif

CORE    := err key log time doc store metrics config api http token limit
CORE_O  := $(CORE:%=$(O)/obj/%.o)
LIBSD   := $(O)/libsd.a
FCGI_LIBS := $(call pc_libs,fcgi,-lfcgi)
CURL_CFLAGS := $(call pc_cflags,libcurl)
CURL_LIBS := $(call pc_libs,libcurl,-lcurl)
CMOCKA_LIBS := $(call pc_libs,cmocka,-lcmocka)

LOADGEN_O := $(O)/obj/loadgen.o $(O)/obj/lg_hist.o $(O)/obj/lg_sched.o $(O)/obj/lg_check.o
UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(O)/tests/%)
HELPER_SRC := $(wildcard tests/helpers/*.c)
HELPER_BIN := $(HELPER_SRC:tests/helpers/%.c=$(O)/tests/%)
BENCH_SRC := $(wildcard bench/*.c)
BENCH_BIN := $(BENCH_SRC:bench/%.c=$(O)/bench/%)

.PHONY: all deps run test test-unit test-integration check bench valgrind crashcheck clean
all: $(SESSIOND) $(if $(wildcard src/sessionctl.c),$(O)/sessionctl) $(if $(wildcard src/loadgen.c),$(O)/loadgen)

$(O)/obj/%.o: src/%.c $(wildcard include/*.h) | $(O)/obj
	$(CC) $(CFLAGS) $(CURL_CFLAGS) -c -o $@ $<

$(O)/obj $(O)/tests $(O)/bench cgi-bin:
	mkdir -p $@

$(LIBSD): $(CORE_O)
	$(AR) rcs $@ $^

$(SESSIOND): $(O)/obj/fcgi.o $(O)/obj/main.o $(LIBSD) | cgi-bin
	$(CC) $(LDFLAGS) -o $@ $^ $(FCGI_LIBS) $(LDLIBS)

$(O)/sessionctl: $(O)/obj/sessionctl.o $(O)/obj/ctl_util.o $(O)/obj/ctl_view.o $(O)/obj/ctl_maint.o $(O)/obj/ctl_import.o $(O)/obj/ctl_token.o $(LIBSD)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(O)/loadgen: $(LOADGEN_O) $(LIBSD)
	$(CC) $(LDFLAGS) -o $@ $^ $(CURL_LIBS) $(LDLIBS) -lm

$(O)/tests/test_loadgen: $(O)/obj/lg_hist.o $(O)/obj/lg_sched.o $(O)/obj/lg_check.o
$(O)/tests/%: tests/unit/%.c $(LIBSD) $(wildcard include/*.h tests/unit/*.h) | $(O)/tests
	$(CC) $(CFLAGS) -Itests/unit -o $@ $< $(filter %.o,$^) $(LIBSD) $(CMOCKA_LIBS) $(LDFLAGS) $(LDLIBS) -lm

$(O)/tests/%: tests/helpers/%.c $(LIBSD) $(wildcard include/*.h) | $(O)/tests
	$(CC) $(CFLAGS) -o $@ $< $(LIBSD) $(LDFLAGS) $(LDLIBS) $(CURL_LIBS) -lm

$(O)/bench/rawfs: $(O)/obj/lg_hist.o
$(O)/bench/%: bench/%.c $(LIBSD) | $(O)/bench
	$(CC) $(CFLAGS) -o $@ $< $(filter %.o,$^) $(LIBSD) $(LDFLAGS) $(LDLIBS) -lm

check: all $(UNIT_BIN) $(HELPER_BIN) $(BENCH_BIN)

deps:
	@scripts/deps.sh

run: deps
	@$(MAKE) --no-print-directory all
	@exec scripts/run.sh --port $(PORT) --data-dir $(DATA_DIR) --limits '$(LIMITS)' --cors-origin '$(CORS_ORIGIN)'

# The whole suite: normal build, then ASan+UBSan build; one summary line.
test: deps
	@$(MAKE) --no-print-directory check
	@$(MAKE) --no-print-directory SAN=1 check
	@tests/run_all.sh

bench: deps
	@$(MAKE) --no-print-directory check
	@bench/run.sh

# The power-loss checker, full form (make test runs its short form).
crashcheck: deps
	@$(MAKE) --no-print-directory all
	@tests/crash/run.sh --full

# Only the valgrind pass of make test (unit suites, and sessiond through nginx).
valgrind: check
	@ONLY=valgrind tests/run_all.sh

clean:
	rm -rf build cgi-bin/sessiond
