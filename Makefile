# msgw-backup: one hand-written Makefile.  Targets: all, check, test, asan, tsan,
# demo, bench, bench-smoke, release, fuzz, format, format-check, install, clean.
#   make                 build/msgw-agent, build/msgw-restore, build/msgw-sim
#                        (a test build: fault-injection points compiled in)
#   make check           every unit and end-to-end test
#   make asan            the same tests under ASan+UBSan (build-asan/)
#   make tsan            the tests that run threads under ThreadSanitizer (build-tsan/)
#   make release         build-release/, without fault injection
#   make fuzz            build the libFuzzer harnesses of tests/fuzz/ with clang
#                        (build-fuzz/) and run each for FUZZ_SECONDS
#   make install PREFIX=/usr/local DESTDIR=...   installs the release build
#   make V=1             show the compiler command lines

PREFIX  ?= /usr/local
DESTDIR ?=
BUILD   ?= build
SAN     ?=
TESTING ?= 1
V       ?= 0
ifeq ($(V),1)
Q :=
else
Q := @
endif
VERSION := 0.1.0

PKGS     := libarchive libgit2 libzstd libssh2 libconfuse jansson libssl libcrypto zlib libsodium
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
# libarchive is not linked: common/archive.c opens it on first use (dlopen);
# the unit tests that build archives of their own link it (ARCHIVE_LIBS)
PKG_LIBS   := $(shell pkg-config --libs $(filter-out libarchive,$(PKGS)) 2>/dev/null)
ARCHIVE_LIBS := $(shell pkg-config --libs libarchive 2>/dev/null)
SIM_LIBS   := $(shell pkg-config --libs jansson libsodium libssl libcrypto 2>/dev/null)
CMOCKA_LIBS := $(shell pkg-config --libs cmocka 2>/dev/null)

CC      ?= cc
WARN    := -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wno-format-nonliteral
HARDEN  := -D_FORTIFY_SOURCE=2 -fstack-protector-strong -fPIE
CFLAGS  ?= -O2 -g
ifeq ($(SAN),1)
CFLAGS  := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
HARDEN  := -fstack-protector-strong -fPIE
LDSAN   := -fsanitize=address,undefined
endif
# ThreadSanitizer (make tsan): the only threads left are libzstd's two
# compression workers (ZSTD_c_nbWorkers in archive.c)
ifeq ($(SAN),thread)
CFLAGS  := -O1 -g -fno-omit-frame-pointer -fsanitize=thread
HARDEN  := -fstack-protector-strong -fPIE
LDSAN   := -fsanitize=thread
endif
ALL_CFLAGS := -std=gnu11 $(WARN) $(HARDEN) $(CFLAGS) -iquote common -include common/compat.h \
	-DMSGW_VERSION='"$(VERSION)"' $(if $(filter 1,$(TESTING)),-DMSGW_TESTING) \
	$(PKG_CFLAGS) -MMD -MP
# common/repo/override.c defines two library entry points that libgit2's
# calls must bind to: export them from the executables (-Wl,-O1 and
# --as-needed: a smaller dynamic section, no library linked for nothing)
OVERRIDES := -Wl,--export-dynamic-symbol=mbedtls_x509_crt_parse_file \
	-Wl,--export-dynamic-symbol=deflateInit_
LDFLAGS_ALL := -pie -Wl,-O1,--as-needed -Wl,-z,relro,-z,now $(OVERRIDES) $(LDSAN) $(LDFLAGS)

COMMON_SRC := $(wildcard common/*.c common/repo/*.c common/fsys/*.c)
CLI_SRC    := $(wildcard cli/*.c)
AGENT_SRC  := $(wildcard agent/*.c)
RESTORE_SRC := $(wildcard restore/*.c)
SIM_SRC    := $(wildcard tests/sim/*.c)
PROXY_SRC  := tests/delayproxy/delayproxy.c
UNIT_SRC   := $(wildcard tests/unit/test_*.c)

COMMON_OBJ := $(COMMON_SRC:%.c=$(BUILD)/obj/%.o)
CLI_OBJ    := $(CLI_SRC:%.c=$(BUILD)/obj/%.o)
AGENT_OBJ  := $(AGENT_SRC:%.c=$(BUILD)/obj/%.o)
RESTORE_OBJ := $(RESTORE_SRC:%.c=$(BUILD)/obj/%.o)
SIM_OBJ    := $(SIM_SRC:%.c=$(BUILD)/obj/%.o)
UNIT_BIN   := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/%)

BINS := $(BUILD)/msgw-agent $(BUILD)/msgw-restore $(BUILD)/msgw-sim $(BUILD)/msgw-delayproxy

all: $(BINS) $(UNIT_BIN)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(BUILD)/libmsgw.a: $(COMMON_OBJ)
	@rm -f $@
	$(Q)ar rcs $@ $^

# cli/ is the front ends' own: common/ cannot include it (common never
# prints to stdout nor exits)
$(CLI_OBJ) $(AGENT_OBJ) $(RESTORE_OBJ): ALL_CFLAGS += -iquote cli

$(BUILD)/msgw-agent: $(AGENT_OBJ) $(CLI_OBJ) $(BUILD)/libmsgw.a
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS_ALL) -o $@ $^ $(PKG_LIBS)

$(BUILD)/msgw-restore: $(RESTORE_OBJ) $(CLI_OBJ) $(BUILD)/libmsgw.a
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS_ALL) -o $@ $^ $(PKG_LIBS)

$(BUILD)/msgw-sim: $(SIM_OBJ)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS_ALL) -o $@ $^ $(SIM_LIBS)

# a TCP proxy on 127.0.0.1 that delays each direction: the bench's slow link
$(BUILD)/msgw-delayproxy: $(PROXY_SRC:%.c=$(BUILD)/obj/%.o)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS_ALL) -o $@ $^

$(BUILD)/test_%: $(BUILD)/obj/tests/unit/test_%.o $(BUILD)/libmsgw.a
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS_ALL) -o $@ $^ $(PKG_LIBS) $(ARCHIVE_LIBS) $(CMOCKA_LIBS)

# libFuzzer harnesses: tests/fuzz/fuzz_NAME.c, linked with common/ compiled
# by clang with the fuzzer's coverage and ASan+UBSan; tests/fuzz/run runs
# each over its seed corpus tests/fuzz/corpus/NAME/ (new inputs are kept in
# build-fuzz/corpus/NAME/, crashes in build-fuzz/crash-NAME-*).
FUZZ_BUILD   ?= build-fuzz
FUZZ_SECONDS ?= 60
FUZZ_CC      ?= clang
FUZZ_SAN     := -fsanitize=address,undefined -fno-sanitize-recover=undefined
FUZZ_CFLAGS  := -std=gnu11 -g -O1 -fno-omit-frame-pointer -fsanitize=fuzzer-no-link $(FUZZ_SAN) \
	-Wall -Wextra -iquote common -include common/compat.h -DMSGW_VERSION='"$(VERSION)"' \
	$(PKG_CFLAGS) -MMD -MP
FUZZ_SRC     := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BIN     := $(FUZZ_SRC:tests/fuzz/%.c=$(FUZZ_BUILD)/%)

$(FUZZ_BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $< (fuzz)")
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) -c -o $@ $<

$(FUZZ_BUILD)/libmsgw.a: $(COMMON_SRC:%.c=$(FUZZ_BUILD)/obj/%.o)
	@rm -f $@
	$(Q)ar rcs $@ $^

$(FUZZ_BUILD)/fuzz_%: $(FUZZ_BUILD)/obj/tests/fuzz/fuzz_%.o $(FUZZ_BUILD)/libmsgw.a
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(FUZZ_CC) -fsanitize=fuzzer $(FUZZ_SAN) -o $@ $^ $(PKG_LIBS)

.PRECIOUS: $(FUZZ_BUILD)/obj/%.o
fuzz-build: $(FUZZ_BIN)

fuzz: deps
	@$(MAKE) --no-print-directory fuzz-build
	tests/fuzz/run $(FUZZ_BUILD) $(FUZZ_SECONDS)

# check, demo and asan first install what they need (fresh machines), then
# build in a sub-make so pkg-config sees the freshly installed libraries.
deps:
	@scripts/install-deps

check test: deps
	@$(MAKE) --no-print-directory run-tests

run-tests: all
	MSGW_BUILD_DIR=$(abspath $(BUILD)) tests/run-all

asan: deps
	@$(MAKE) --no-print-directory BUILD=build-asan SAN=1 run-tests

# The tests that run the threads left (archive writing: a snapshot) under
# ThreadSanitizer; unit tests first, then the end-to-end tests that write
# archives, ending with run-all's "N passed, N failed".
TSAN_UNITS := test_archive test_walk test_statcache
TSAN_E2E   := t2000 t2010 t2700
tsan: deps
	@$(MAKE) --no-print-directory BUILD=build-tsan SAN=thread build-tsan/msgw-agent \
		build-tsan/msgw-restore build-tsan/msgw-sim $(TSAN_UNITS:%=build-tsan/%)
	set -e; for t in $(TSAN_UNITS); do (cd "$$(mktemp -d)" && \
		TSAN_OPTIONS=halt_on_error=1 $(abspath build-tsan)/$$t); done
	TSAN_OPTIONS=halt_on_error=1 MSGW_BUILD_DIR=$(abspath build-tsan) tests/run-all $(TSAN_E2E)

release:
	@$(MAKE) --no-print-directory BUILD=build-release TESTING=0 \
		build-release/msgw-agent build-release/msgw-restore

demo: deps
	@$(MAKE) --no-print-directory all
	MSGW_BUILD_DIR=$(abspath $(BUILD)) scripts/demo

bench: deps
	@$(MAKE) --no-print-directory all
	scripts/bench

bench-smoke: deps
	@$(MAKE) --no-print-directory all
	scripts/bench --smoke

format:
	clang-format -i $(COMMON_SRC) $(wildcard common/*.h common/repo/*.h common/fsys/*.h) $(CLI_SRC) $(wildcard cli/*.h) $(AGENT_SRC) $(wildcard agent/*.h) \
		$(RESTORE_SRC) $(wildcard restore/*.h) $(SIM_SRC) $(wildcard tests/sim/*.h) $(PROXY_SRC) $(UNIT_SRC) $(FUZZ_SRC)

format-check:
	clang-format --dry-run -Werror $(COMMON_SRC) $(wildcard common/*.h common/repo/*.h common/fsys/*.h) $(CLI_SRC) $(wildcard cli/*.h) $(AGENT_SRC) \
		$(wildcard agent/*.h) $(RESTORE_SRC) $(wildcard restore/*.h) $(SIM_SRC) \
		$(wildcard tests/sim/*.h) $(PROXY_SRC) $(UNIT_SRC) $(FUZZ_SRC)

install: release
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/man/man8 \
		$(DESTDIR)$(PREFIX)/share/man/man5 $(DESTDIR)/etc/msgw-backup \
		$(DESTDIR)$(PREFIX)/lib/systemd/system
	install -m 0755 build-release/msgw-agent build-release/msgw-restore $(DESTDIR)$(PREFIX)/bin/
	install -m 0640 etc/msgw-backup.conf $(DESTDIR)/etc/msgw-backup/msgw-backup.conf.example
	for f in etc/systemd/*; do [ -f "$$f" ] && install -m 0644 "$$f" $(DESTDIR)$(PREFIX)/lib/systemd/system/; done; true
	for f in man/*.8; do [ -f "$$f" ] && install -m 0644 "$$f" $(DESTDIR)$(PREFIX)/share/man/man8/; done; true
	for f in man/*.5; do [ -f "$$f" ] && install -m 0644 "$$f" $(DESTDIR)$(PREFIX)/share/man/man5/; done; true

clean:
	rm -rf build build-asan build-tsan build-release build-fuzz

.PHONY: all deps check test run-tests asan tsan release demo bench bench-smoke format format-check install \
	clean fuzz fuzz-build

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
ifneq ($(filter fuzz fuzz-build $(FUZZ_BUILD)/%,$(MAKECMDGOALS)),)
-include $(shell find $(FUZZ_BUILD)/obj -name '*.d' 2>/dev/null)
endif
