# replicafs - one non-recursive Makefile.
#
#   make            build build/replicafs (optimized, with debug info)
#   make test       install what is missing, then unit and integration
#                   tests under AddressSanitizer + UBSan
#   make run        install, build, mount a demo under ./run/
#   make bench      install, build, compare a mount with the native disk
#   make SANITIZE=1 build into build-san/ with the sanitizers

CC ?= cc
PKGS := fuse3 sqlite3 libcrypto jansson libcurl libxml-2.0 liburing

ifeq ($(SANITIZE),1)
B := build-san
OPT := -O1 -fno-omit-frame-pointer -fsanitize=address,undefined \
	-fno-sanitize-recover=undefined
else
B := build
OPT := -O2
endif

WARN := -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wstrict-prototypes \
	-Wmissing-prototypes -Wpointer-arith -Wvla -Wno-unused-parameter
CFLAGS ?=
CFLAGS += -std=gnu11 -g $(OPT) $(WARN) -D_GNU_SOURCE \
	-D_FILE_OFFSET_BITS=64 -I. \
	$(shell pkg-config --cflags $(PKGS) 2>/dev/null) -MMD -MP
LDFLAGS += $(filter -fsanitize%,$(OPT))
LIBS := $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lpthread

STORE_SRC := $(wildcard store/*.c)
REPL_SRC := $(wildcard replicator/*.c)
FS_SRC := $(wildcard fs/*.c)
UNIT_SRC := $(wildcard tests/unit/test_*.c)
STRESS_SRC := $(wildcard tests/stress/*.c)

STORE_OBJ := $(STORE_SRC:%.c=$(B)/%.o)
REPL_OBJ := $(REPL_SRC:%.c=$(B)/%.o)
FS_OBJ := $(FS_SRC:%.c=$(B)/%.o)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(B)/tests/%)
STRESS_BIN := $(STRESS_SRC:tests/stress/%.c=$(B)/tests/%)

all: $(B)/replicafs

# Functions the house style bans (see scripts/banned.sh): a build error.
$(B)/banned.ok: $(STORE_SRC) $(REPL_SRC) $(FS_SRC) $(wildcard */*.h) \
		scripts/banned.sh
	@mkdir -p $(B)
	@scripts/banned.sh $(filter %.c %.h,$^)
	@touch $@

$(B)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c -o $@ $<

$(B)/replicafs: $(FS_OBJ) $(REPL_OBJ) $(STORE_OBJ) | $(B)/banned.ok
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)

$(B)/tests/%: $(B)/tests/unit/%.o $(REPL_OBJ) $(STORE_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS) -lcriterion

# The ACL arithmetic of the mount, tested on its own.
$(B)/tests/test_acl: $(B)/fs/acl.o

$(B)/tests/%: $(B)/tests/stress/%.o $(REPL_OBJ) $(STORE_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)

# The pass-through mount that `make bench` measures as the floor of any
# FUSE file system on this machine (tests/bench/passfs.c), on replicafs's
# own request loop.
$(B)/passfs: $(B)/tests/bench/passfs.o $(B)/fs/loop.o $(B)/fs/uring.o \
		$(B)/store/log.o
	$(CC) $(LDFLAGS) -o $@ $^ $(shell pkg-config --libs fuse3 liburing) \
		-lpthread

deps:
	@scripts/deps.sh

# The whole suite, under the sanitizers.  A LeakSanitizer report does not
# fail a Criterion test by itself, so the log is scanned for any report.
# The sanitizer build compiles on every CPU, unless make was given -j.
JOBS = $$(case " $$MAKEFLAGS" in *" -j"* | *jobserver*) ;; \
	  *) echo -j$$(nproc 2>/dev/null || echo 1) ;; esac)

test: deps
	@$(MAKE) --no-print-directory $(JOBS) SANITIZE=1 build-san/replicafs \
		build-san/passfs $(patsubst build/%,build-san/%,$(UNIT_BIN) $(STRESS_BIN))
	@scripts/test.sh build-san

unit: deps
	@$(MAKE) --no-print-directory SANITIZE=1 \
		$(patsubst build/%,build-san/%,$(UNIT_BIN))
	@UNIT_ONLY=1 scripts/test.sh build-san

run: deps
	@$(MAKE) --no-print-directory build/replicafs
	@scripts/run.sh build/replicafs

bench: deps
	@$(MAKE) --no-print-directory build/replicafs build/passfs
	@scripts/bench.sh build/replicafs; a=$$?; \
	scripts/bench-batch.sh build/replicafs; b=$$?; \
	[ $$a = 0 ] && [ $$b = 0 ]

format:
	clang-format -i $(STORE_SRC) $(REPL_SRC) $(FS_SRC) $(UNIT_SRC) \
		tests/bench/passfs.c $(wildcard */*.h)

clean:
	rm -rf build build-san

.PHONY: all deps test unit run bench format clean
.SECONDARY:

-include $(shell find $(B) -name '*.d' 2>/dev/null)
