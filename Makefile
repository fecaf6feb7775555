# media_reco: PGXS build.  `make && sudo make install`; tests: see README.
EXTENSION  = media_reco
EXTVERSION = 0.10.0

MODULE_big = media_reco
# one object per line, so parallel changes merge cleanly
# plain-C cores (no PostgreSQL calls: also built by test/unit and test/fuzz)
OBJS = \
	src/core.o \
	src/parallel.o \
	src/training_core.o \
	src/model_blob.o \
	src/state_codec.o \
	src/simcore.o \
	src/pairsums_core.o \
	src/ease_core.o \
	src/forest_core.o \
	src/treeshap_core.o \
	src/mlp_core.o \
	src/als_core.o
# SQL glue
OBJS += \
	src/media_reco.o \
	src/core_pg.o \
	src/model_blob_pg.o \
	src/simcore_pg.o \
	src/forest_pg.o \
	src/mlp_pg.o \
	src/citus.o \
	src/source.o \
	src/similarity.o \
	src/pairsums.o \
	src/neighbors.o \
	src/recommend.o \
	src/serving.o \
	src/als.o \
	src/batch.o \
	src/userbased.o \
	src/forest.o \
	src/inputs.o \
	src/model_registry.o \
	src/predict.o \
	src/explain.o \
	src/training.o \
	src/forest_train.o \
	src/mlp.o \
	src/metrics.o \
	src/evaluate.o \
	src/synth.o \
	src/plan_cache.o \
	src/util.o

DATA_built = sql-build/$(EXTENSION)--$(EXTVERSION).sql
# the released scripts, frozen, and the upgrade path from each
DATA = \
	src/sql/$(EXTENSION)--0.1.0.sql \
	src/sql/$(EXTENSION)--0.2.0.sql \
	src/sql/$(EXTENSION)--0.1.0--0.2.0.sql \
	src/sql/$(EXTENSION)--0.3.0.sql \
	src/sql/$(EXTENSION)--0.2.0--0.3.0.sql \
	src/sql/$(EXTENSION)--0.3.0--0.4.0.sql \
	src/sql/$(EXTENSION)--0.4.0.sql \
	src/sql/$(EXTENSION)--0.4.0--0.5.0.sql \
	src/sql/$(EXTENSION)--0.5.0.sql \
	src/sql/$(EXTENSION)--0.5.0--0.6.0.sql \
	src/sql/$(EXTENSION)--0.6.0.sql \
	src/sql/$(EXTENSION)--0.6.0--0.7.0.sql \
	src/sql/$(EXTENSION)--0.7.0.sql \
	src/sql/$(EXTENSION)--0.7.0--0.8.0.sql \
	src/sql/$(EXTENSION)--0.8.0.sql \
	src/sql/$(EXTENSION)--0.8.0--0.9.0.sql \
	src/sql/$(EXTENSION)--0.9.0.sql \
	src/sql/$(EXTENSION)--0.9.0--0.10.0.sql

REGRESS = similarity similarity_reference neighbors recommend decay synth metrics errors forest models filters batch userbased evaluate mlp explain ease rp3beta als pair_sums
REGRESS_OPTS = --load-extension=$(EXTENSION)
# isolation specs: test/isolation/specs/*.spec, expected output in test/isolation/expected
ISOLATION = refresh_concurrency model_concurrency split_snapshot als_concurrency
ISOLATION_OPTS = --load-extension=$(EXTENSION) --inputdir=test/isolation

# OpenBLAS through pkg-config.  Debian's serial build is preferred when it is
# installed (test/setup.sh installs it): one BLAS thread per backend by
# construction, whereas the pthread build starts a spinning helper thread in
# every backend that loads the library.  The rpath pins the variant we built
# against, whatever the system-wide libopenblas.so.0 alternative points to.
# _PG_init also calls openblas_set_num_threads(1) for the pthread build.
comma := ,
OPENBLAS_PC_DIR ?= $(firstword $(wildcard /usr/lib/*/openblas-serial/pkgconfig))
ifeq ($(OPENBLAS_PC_DIR),)
ifeq ($(MEDIA_RECO_ALLOW_THREADED_BLAS),)
$(error serial OpenBLAS not found: apt-get install libopenblas-serial-dev (or build with MEDIA_RECO_ALLOW_THREADED_BLAS=1 to link the default OpenBLAS, whose load-time threads are outside PostgreSQL's signal handling))
endif
endif
BLAS_PKG_CONFIG = PKG_CONFIG_PATH=$(OPENBLAS_PC_DIR) pkg-config
BLAS_LIBDIR := $(shell $(BLAS_PKG_CONFIG) --variable=libdir openblas)

PG_CPPFLAGS += -I$(srcdir)/src $(shell $(BLAS_PKG_CONFIG) --cflags openblas)
# no fused multiply-adds: the sums and the decay must give the same bits on every node (pairsums_core.h)
PG_CFLAGS   += -std=gnu11 -Wall -Wmissing-prototypes -ffp-contract=off
# ... in the JIT's bitcode of the library too (clang contracts by default)
override BITCODE_CFLAGS += -ffp-contract=off
SHLIB_LINK  += $(shell $(BLAS_PKG_CONFIG) --libs openblas) \
               $(if $(BLAS_LIBDIR),-Wl$(comma)-rpath$(comma)$(BLAS_LIBDIR)) -lpthread -lm

EXTRA_CLEAN = sql-build results regression.diffs regression.out tmp_check

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

sql-build/$(EXTENSION)--$(EXTVERSION).sql: src/sql/$(EXTENSION).sql
	@mkdir -p sql-build
	cp $< $@

# The ALS row solvers are short loops over f doubles: -O3 vectorises them (the
# summation order is written out in als_core.c, so results do not change with it)
src/als_core.o: override CFLAGS += -O3

# PGXS does not track header dependencies: rebuild every object when a header changes
$(OBJS): $(wildcard $(srcdir)/src/*.h)

# TAP tests (test/t) alone, against a fresh build and install; as root they run as postgres
.PHONY: prove
prove:
	MR_ONLY=tap bash test/run_tests.sh
