# sessiond: plain GNU make with pkg-config.
#   make            build cgi-bin/sessiond, build/sessionctl, build/loadgen
#   make run        install what is missing, build, serve on 127.0.0.1:$(PORT)
#                   (LIMITS=off: no rate or miss limits, for load tests;
#                   CORS_ORIGIN=LIST: allowed origins, sessiond and nginx)
#   make test       install what is missing, run every test, then again under ASan+UBSan
#   make bench      measure against the ceilings (see README, Performance), on
#                   its own stack with the limits off (as LIMITS=off)
#   make crashcheck the power-loss checker, full form (tests/crash/README.md)
#   make fuzz       libFuzzer harnesses (clang), each run FUZZ_SECONDS (default 60)
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

CORE    := err key log time mem doc docscan store metrics config api http token limit
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
# Fuzz harnesses: each also links with tests/fuzz/replay.c (this compiler)
# into a corpus replay that make test runs; make fuzz builds them with clang.
FUZZ_SRC := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_NAMES := $(FUZZ_SRC:tests/fuzz/%.c=%)
REPLAY_BIN := $(FUZZ_NAMES:%=$(O)/tests/replay_%)
CTL_O := $(O)/obj/ctl_import.o $(O)/obj/ctl_util.o

.PHONY: all deps run test test-unit test-integration check bench valgrind crashcheck fuzz fuzz-build clean
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
$(O)/bench/fcgi_ceiling: LDLIBS += $(FCGI_LIBS)
$(O)/bench/%: bench/%.c $(LIBSD) | $(O)/bench
	$(CC) $(CFLAGS) -o $@ $< $(filter %.o,$^) $(LIBSD) $(LDFLAGS) $(LDLIBS) -lm

# The fault-injection shim (tests/integration/faults.sh): a plain shared
# object, without sanitizers, preloaded into sessiond.
FAULTINJECT := $(O)/tests/faultinject.so
$(FAULTINJECT): tests/faultinject/faultinject.c | $(O)/tests
	$(CC) -O2 -g -std=gnu11 $(WARN) -D_GNU_SOURCE -fPIC -shared -o $@ $< -ldl

$(O)/tests/replay_%: tests/fuzz/%.c tests/fuzz/replay.c $(CTL_O) $(LIBSD) $(wildcard include/*.h tests/fuzz/*.h) | $(O)/tests
	$(CC) $(CFLAGS) -Itests/fuzz -o $@ $< tests/fuzz/replay.c $(CTL_O) $(LIBSD) $(LDFLAGS) $(LDLIBS)

check: all $(UNIT_BIN) $(HELPER_BIN) $(BENCH_BIN) $(REPLAY_BIN) $(FAULTINJECT)

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

bench:
	@scripts/deps.sh --bench
	@$(MAKE) --no-print-directory check
	@bench/run.sh

# The power-loss checker, full form (make test runs its short form).
crashcheck: deps
	@$(MAKE) --no-print-directory all
	@tests/crash/run.sh --full

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
FUZZ_CFLAGS  := -O1 -g -std=gnu11 $(WARN) -Wno-unknown-warning-option -Iinclude -D_GNU_SOURCE \
		$(call pc_cflags,$(PKGS)) $(FUZZ_SAN)
FUZZ_LIB     := $(FUZZ_DIR)/libsd.a
FUZZ_LIB_O   := $(CORE:%=$(FUZZ_DIR)/obj/%.o) $(FUZZ_DIR)/obj/ctl_import.o $(FUZZ_DIR)/obj/ctl_util.o

$(FUZZ_DIR)/obj:
	mkdir -p $@
$(FUZZ_DIR)/obj/%.o: src/%.c $(wildcard include/*.h) | $(FUZZ_DIR)/obj
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c -o $@ $<
$(FUZZ_LIB): $(FUZZ_LIB_O)
	$(AR) rcs $@ $^
$(FUZZ_DIR)/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_LIB) $(wildcard include/*.h tests/fuzz/*.h)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -Itests/fuzz -o $@ $< $(FUZZ_LIB) $(LDLIBS)

fuzz-build: $(FUZZ_NAMES:%=$(FUZZ_DIR)/%)

fuzz:
	@scripts/deps.sh --fuzz
	@$(MAKE) --no-print-directory fuzz-build
	@FUZZ_SECONDS=$(FUZZ_SECONDS) tests/fuzz/run.sh $(FUZZ_NAMES)

clean:
	rm -rf build cgi-bin/sessiond
