# media_reco: PGXS build.  `make && sudo make install`; tests: see README.
EXTENSION  = media_reco
EXTVERSION = 0.1.0

MODULE_big = media_reco
OBJS = src/media_reco.o src/simcore.o src/source.o src/similarity.o \
       src/neighbors.o src/recommend.o src/synth.o src/util.o

DATA_built = sql-build/$(EXTENSION)--$(EXTVERSION).sql

REGRESS = similarity similarity_reference neighbors recommend synth errors
REGRESS_OPTS = --load-extension=$(EXTENSION)

PG_CPPFLAGS += -I$(srcdir)/src $(shell pkg-config --cflags openblas)
PG_CFLAGS   += -std=gnu11 -Wall -Wmissing-prototypes -Wno-declaration-after-statement
SHLIB_LINK  += $(shell pkg-config --libs openblas) -lpthread -lm

EXTRA_CLEAN = sql-build results regression.diffs regression.out tmp_check

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

sql-build/$(EXTENSION)--$(EXTVERSION).sql: src/sql/$(EXTENSION).sql
	@mkdir -p sql-build
	cp $< $@
