# sessiond: plain GNU make with pkg-config.
#   make            build cgi-bin/sessiond, build/sessionctl, build/loadgen
#   make run        install what is missing, build, serve on 127.0.0.1:$(PORT)
#                   (LIMITS=off: no rate or miss limits, for load tests;
#                   CORS_ORIGIN=LIST: allowed origins, sessiond and nginx)
#   make current    make all, but not for a new version alone (after a commit)
#   make cluster    NODES sessiond nodes behind a routing nginx on 127.0.0.1:$(PORT),
#                   data in ./var/cluster/ (docs/cluster.md; LIMITS, CORS_ORIGIN as for run)
#   make test       install what is missing, run every test, then again under ASan+UBSan
#   make bench      measure against the ceilings (docs/performance.md), on
#                   its own stack with the limits off (as LIMITS=off)
#   make crashcheck the power-loss checker, full form (tests/crash/README.md)
#   make fuzz       libFuzzer harnesses (clang), each run FUZZ_SECONDS (default 60)
#   make SAN=1 ...  build into build/san with AddressSanitizer + UBSan
#   make install    install the programs, the systemd units and the nginx
#                   files under $(DESTDIR)$(PREFIX) (docs/operations.md)

PORT     ?= 8080
NODES    ?= 3
DATA_DIR ?= $(CURDIR)/var
SAN      ?=
LIMITS   ?= on
CORS_ORIGIN ?=
CC       ?= cc
# What --version prints: `make VERSION=1.2`; empty: `git describe --always
# --dirty`, or "unknown" outside git (scripts/version.sh).
VERSION  :=
PREFIX   ?= /usr/local
DESTDIR  ?=

PKGS := fcgi jansson libsodium
pc_cflags = $(shell pkg-config --cflags $(1) 2>/dev/null)
pc_libs   = $(shell pkg-config --libs $(1) 2>/dev/null || echo $(2))

# Paths and messages are bounded on purpose; truncation there is handled.
WARN    := -Wall -Wextra -Werror -Wmissing-prototypes -Wstrict-prototypes -Wwrite-strings -Wshadow -Wno-format-truncation
CFLAGS  ?= -O2 -g
# -MMD -MP: each object depends on exactly the headers it includes (build/**/*.d).
CFLAGS  += -std=gnu11 $(WARN) -Iinclude -D_GNU_SOURCE -MMD -MP $(call pc_cflags,$(PKGS))
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

# The three programs, one folder each; src/core is what they share (its
# headers are include/), each program's private headers sit next to it.
#   src/core/        documents, the store, keys, tokens, errors, logs, metrics
#   src/sessiond/    the FastCGI server: options, requests, the operations
#   src/sessionctl/  the admin tool
#   src/loadgen/     the load generator
CORE      := err key layout log time mem doc docscan docsplice store store_scan metrics token sweep shard bucket
SESSIOND_M := config api http limit fcgi node
CTL       := util view maint import token bucket
LOADGEN   := hist sched check
LOADGEN_RUN := opts net scenario report   # the run (lg_run.h); LOADGEN: pure logic, unit-tested

CORE_O    := $(CORE:%=$(O)/obj/core/%.o)
SESSIOND_O := $(SESSIOND_M:%=$(O)/obj/sessiond/%.o)
CTL_O     := $(CTL:%=$(O)/obj/sessionctl/ctl_%.o)
LG_O      := $(LOADGEN:%=$(O)/obj/loadgen/lg_%.o)
LG_RUN_O  := $(LOADGEN_RUN:%=$(O)/obj/loadgen/%.o)
# The version (include/sd_version.h): regenerated on every make, but the
# file is only rewritten when it changes; only the programs link it. So a
# commit alone relinks the three programs on the next make all; `make
# current` (what make cluster and scripts/loadtest use) does not: see there.
VERSION_C := $(O)/gen/version.c
VERSION_O := $(O)/obj/gen/version.o
LIBCORE   := $(O)/libcore.a
LIBSESSIOND := $(O)/libsessiond.a
FCGI_LIBS := $(call pc_libs,fcgi,-lfcgi)
CURL_CFLAGS := $(call pc_cflags,libcurl)
CURL_LIBS := $(call pc_libs,libcurl,-lcurl)
CMOCKA_LIBS := $(call pc_libs,cmocka,-lcmocka)

UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(O)/tests/%)
# bench/fsops.c is no program: the file-system steps rawfs and fcgi_ceiling share.
BENCH_SRC := $(filter-out bench/fsops.c,$(wildcard bench/*.c))
BENCH_BIN := $(BENCH_SRC:bench/%.c=$(O)/bench/%)
# Fuzz harnesses: each also links with tests/fuzz/replay.c (this compiler)
# into a corpus replay that make test runs; make fuzz builds them with clang.
FUZZ_SRC := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_NAMES := $(FUZZ_SRC:tests/fuzz/%.c=%)
REPLAY_BIN := $(FUZZ_NAMES:%=$(O)/tests/replay_%)
# Tests and harnesses see every program's private headers.
TEST_INC := -Isrc/sessiond -Isrc/sessionctl -Isrc/loadgen

.PHONY: all current deps run cluster test check bench valgrind crashcheck fuzz fuzz-build clean install FORCE
all: $(SESSIOND) $(O)/sessionctl $(O)/loadgen

# make all only when something besides the version string is missing or out
# of date: asked with make -q and the version file taken as it is. A commit
# alone then relinks nothing, so a suite or a cluster running from this
# tree keeps its binaries; when a source did change, make all builds it and
# the version with it.
current:
	@$(MAKE) --no-print-directory -q VERSION_AS_IS=1 all || $(MAKE) --no-print-directory all

$(O)/obj/core/%.o: src/core/%.c | $(O)/obj/core
	$(CC) $(CFLAGS) -c -o $@ $<
$(O)/obj/sessiond/%.o: src/sessiond/%.c | $(O)/obj/sessiond
	$(CC) $(CFLAGS) -Isrc/sessiond -c -o $@ $<
$(O)/obj/sessionctl/%.o: src/sessionctl/%.c | $(O)/obj/sessionctl
	$(CC) $(CFLAGS) -Isrc/sessionctl -c -o $@ $<
# Only the load generator speaks HTTP itself (libcurl).
$(O)/obj/loadgen/%.o: src/loadgen/%.c | $(O)/obj/loadgen
	$(CC) $(CFLAGS) $(CURL_CFLAGS) -Isrc/loadgen -c -o $@ $<

# VERSION_AS_IS=1: the version file as it is (made only when missing);
# only make current's question to make -q sets it.
ifeq ($(VERSION_AS_IS),1)
$(VERSION_C):
else
$(VERSION_C): FORCE
endif
	@mkdir -p $(dir $@)
	@scripts/version.sh $@ '$(VERSION)'
$(VERSION_O): $(VERSION_C)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c -o $@ $<

$(O)/obj/core $(O)/obj/sessiond $(O)/obj/sessionctl $(O)/obj/loadgen $(O)/tests $(O)/bench cgi-bin:
	mkdir -p $@

$(LIBCORE): $(CORE_O)
	$(AR) rcs $@ $^
$(LIBSESSIOND): $(SESSIOND_O)
	$(AR) rcs $@ $^

$(SESSIOND): $(O)/obj/sessiond/sessiond.o $(VERSION_O) $(LIBSESSIOND) $(LIBCORE) | cgi-bin
	$(CC) $(LDFLAGS) -o $@ $^ $(FCGI_LIBS) $(LDLIBS)

$(O)/sessionctl: $(O)/obj/sessionctl/sessionctl.o $(VERSION_O) $(CTL_O) $(LIBCORE)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(O)/loadgen: $(O)/obj/loadgen/loadgen.o $(VERSION_O) $(LG_RUN_O) $(LG_O) $(LIBCORE)
	$(CC) $(LDFLAGS) -o $@ $^ $(CURL_LIBS) $(LDLIBS) -lm

$(O)/tests/test_loadgen: $(LG_O)
$(O)/tests/%: tests/unit/%.c $(LIBSESSIOND) $(LIBCORE) | $(O)/tests
	$(CC) $(CFLAGS) $(TEST_INC) -Itests/unit -o $@ $< $(filter %.o,$^) $(LIBSESSIOND) $(LIBCORE) $(CMOCKA_LIBS) $(LDFLAGS) $(LDLIBS) -lm

$(O)/bench/fsops.o: bench/fsops.c | $(O)/bench
	$(CC) $(CFLAGS) -c -o $@ $<
$(O)/bench/rawfs: $(O)/obj/loadgen/lg_hist.o $(O)/bench/fsops.o
$(O)/bench/fcgi_ceiling: $(O)/bench/fsops.o
$(O)/bench/fcgi_ceiling: LDLIBS += $(FCGI_LIBS)
$(O)/bench/%: bench/%.c $(LIBCORE) | $(O)/bench
	$(CC) $(CFLAGS) $(TEST_INC) -o $@ $< $(filter %.o,$^) $(LIBCORE) $(LDFLAGS) $(LDLIBS) -lm

# The fault-injection shim (tests/integration/faults.sh): a plain shared
# object, without sanitizers, preloaded into sessiond.
FAULTINJECT := $(O)/tests/faultinject.so
$(FAULTINJECT): tests/faultinject/faultinject.c | $(O)/tests
	$(CC) -O2 -g -std=gnu11 $(WARN) -D_GNU_SOURCE -fPIC -shared -o $@ $< -ldl

$(O)/tests/replay_%: tests/fuzz/%.c tests/fuzz/replay.c $(CTL_O) $(LIBSESSIOND) $(LIBCORE) | $(O)/tests
	$(CC) $(CFLAGS) $(TEST_INC) -Itests/fuzz -o $@ $< tests/fuzz/replay.c $(CTL_O) $(LIBSESSIOND) $(LIBCORE) $(LDFLAGS) $(LDLIBS)

check: all $(UNIT_BIN) $(BENCH_BIN) $(REPLAY_BIN) $(FAULTINJECT)

deps:
	@scripts/deps.sh

run: deps
	@$(MAKE) --no-print-directory all
	@exec scripts/run.sh --port $(PORT) --data-dir $(DATA_DIR) --limits '$(LIMITS)' --cors-origin '$(CORS_ORIGIN)'

cluster: deps
	@$(MAKE) --no-print-directory current
	@exec scripts/cluster.sh --nodes $(NODES) --port $(PORT) --dir $(CURDIR)/var/cluster --limits '$(LIMITS)' --cors-origin '$(CORS_ORIGIN)'

# The whole suite: normal build, then ASan+UBSan build; one summary line.
test: deps
	@$(MAKE) --no-print-directory check
	@$(MAKE) --no-print-directory SAN=1 check
	@tests/run_all.sh

bench:
	@scripts/deps.sh --bench
	@$(MAKE) --no-print-directory check
	@bench/run.sh

# The power-loss checker, full form (make test runs its short form).
crashcheck: deps
	@$(MAKE) --no-print-directory all
	@tests/crash/run.sh --full

# make install [PREFIX=/usr/local] [DESTDIR=]: the three programs in bin/
# (the load generator as sessiond-loadgen), the systemd units in
# lib/systemd/system/ (ExecStart pointing at PREFIX), the production nginx
# site, its snippets and nginx-cors-map in share/sessiond/nginx/ (for the
# admin to copy into /etc/nginx; see docs/operations.md, Deployment).
BINDIR   := $(PREFIX)/bin
UNITDIR  := $(PREFIX)/lib/systemd/system
NGINXDIR := $(PREFIX)/share/sessiond/nginx
install: all
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(UNITDIR) $(DESTDIR)$(NGINXDIR)
	install -m 755 $(SESSIOND) $(DESTDIR)$(BINDIR)/sessiond
	install -m 755 $(O)/sessionctl $(DESTDIR)$(BINDIR)/sessionctl
	install -m 755 $(O)/loadgen $(DESTDIR)$(BINDIR)/sessiond-loadgen
	sed 's|^ExecStart=/usr/local/bin/|ExecStart=$(BINDIR)/|' conf/sessiond.service >$(DESTDIR)$(UNITDIR)/sessiond.service
	chmod 644 $(DESTDIR)$(UNITDIR)/sessiond.service
	install -m 644 conf/sessiond.socket $(DESTDIR)$(UNITDIR)/sessiond.socket
	install -m 644 conf/nginx-sessiond.conf conf/sessiond-edge-http.conf conf/sessiond-edge-errors.conf $(DESTDIR)$(NGINXDIR)/
	install -m 755 scripts/nginx-cors-map $(DESTDIR)$(NGINXDIR)/nginx-cors-map

# Only the valgrind pass of make test (unit suites, and sessiond through nginx).
valgrind: check
	@ONLY=valgrind tests/run_all.sh

# Fuzzing: clang with libFuzzer, ASan and UBSan. The core is compiled
# again into build/fuzz/obj (coverage-instrumented), never mixed with the
# gcc objects. tests/fuzz/run.sh runs each harness FUZZ_SECONDS on a copy
# of its corpus and fails on any crash.
FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 60
FUZZ_DIR     := build/fuzz
FUZZ_SAN     := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
FUZZ_CFLAGS  := -O1 -g -std=gnu11 $(WARN) -Wno-unknown-warning-option -Iinclude -D_GNU_SOURCE -MMD -MP \
		$(call pc_cflags,$(PKGS)) $(FUZZ_SAN)
FUZZ_LIB     := $(FUZZ_DIR)/libsd.a
FUZZ_LIB_O   := $(CORE:%=$(FUZZ_DIR)/obj/core/%.o) \
		$(filter-out %/fcgi.o,$(SESSIOND_M:%=$(FUZZ_DIR)/obj/sessiond/%.o)) \
		$(FUZZ_DIR)/obj/sessionctl/ctl_import.o $(FUZZ_DIR)/obj/sessionctl/ctl_util.o

$(FUZZ_DIR)/obj/%.o: src/%.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(TEST_INC) -fsanitize=fuzzer-no-link -c -o $@ $<
$(FUZZ_LIB): $(FUZZ_LIB_O)
	$(AR) rcs $@ $^
$(FUZZ_DIR)/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_LIB)
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(TEST_INC) -fsanitize=fuzzer -Itests/fuzz -o $@ $< $(FUZZ_LIB) $(LDLIBS)

fuzz-build: $(FUZZ_NAMES:%=$(FUZZ_DIR)/%)

fuzz:
	@scripts/deps.sh --fuzz
	@$(MAKE) --no-print-directory fuzz-build
	@FUZZ_SECONDS=$(FUZZ_SECONDS) tests/fuzz/run.sh $(FUZZ_NAMES)

clean:
	rm -rf build cgi-bin/sessiond

-include $(wildcard $(O)/obj/*/*.d $(O)/tests/*.d $(O)/bench/*.d $(FUZZ_DIR)/obj/*/*.d $(FUZZ_DIR)/*.d)
