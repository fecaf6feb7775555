/*
 * pairsums.c
 *	  The aggregate media_reco.pair_sums and the refresh it serves on a Citus
 *	  table distributed by user (the plain-C part is pairsums_core.c).
 *
 * Citus pushes an aggregate down to the shards when its state type is a
 * concrete type with a combine function: each worker runs the transition
 * over its shard's rows and sends the state as the type's text form, the
 * coordinator combines the states and runs the final function.  The state
 * here is a bytea: while rows come in, a read-write expanded object (its
 * memory a child of the aggregate's context, so neither PostgreSQL's nodeAgg
 * nor Citus's worker_partial_agg copies it between rows) holding the rows;
 * flattened (when Citus sends it, or the final function reads it), it
 * becomes the shard's encoded pair sums.  The combine function collects the
 * shards' encodings into a bundle (u32 'MRPB' | u32 count | count times
 * u64 length, bytes), counted against the coordinator's
 * maintenance_work_mem; the final function returns the bundle.  Merging the
 * bundle into neighbour lists needs the metric's options, which Citus's
 * combine step does not pass to a final function, so the caller merges
 * (pairsums_refresh, or pair_sums_neighbors in SQL).
 */
#include "postgres.h"

#include <float.h>
#include <math.h>
#include <time.h>

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "postmaster/postmaster.h"
#include "tcop/dest.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/expandeddatum.h"
#include "utils/guc.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"

#include "citus.h"
#include "core_pg.h"
#include "pairsums.h"
#include "pairsums_core.h"
#include "simcore.h"
#include "util.h"

int			media_reco_citus_pair_sums = CITUS_PAIR_SUMS_AUTO;

const struct config_enum_entry citus_pair_sums_options[] = {
	{"auto", CITUS_PAIR_SUMS_AUTO, false},
	{"on", CITUS_PAIR_SUMS_ON, false},
	{"off", CITUS_PAIR_SUMS_OFF, false},
	{"true", CITUS_PAIR_SUMS_ON, true},
	{"false", CITUS_PAIR_SUMS_OFF, true},
	{"yes", CITUS_PAIR_SUMS_ON, true},
	{"no", CITUS_PAIR_SUMS_OFF, true},
	{"1", CITUS_PAIR_SUMS_ON, true},
	{"0", CITUS_PAIR_SUMS_OFF, true},
	{NULL, 0, false}
};

#define BUNDLE_MAGIC	0x4250524dU /* "MRPB" */
#define BUNDLE_HEADER	8

/* a bundle being built: the bytes (header included) in cxt */
typedef struct Bundle
{
	MemoryContext cxt;
	char	   *buf;
	size_t		len;
	size_t		cap;
	size_t		limit;
	int32		n;
} Bundle;

typedef enum PsKind
{
	PS_SHARD,					/* rows of one shard */
	PS_MERGE					/* states of several shards */
} PsKind;

typedef struct PsObject
{
	ExpandedObjectHeader hdr;
	PsKind		kind;
	/* PS_SHARD */
	MemoryContext build;		/* the rows and their matrix, dropped once encoded */
	TripleBuffer *tb;
	bool		weighted;
	bool		centred;		/* adjusted cosine: centred by user before encoding */
	bool		lengths;		/* bm25's first pass: the users' lengths only */
	bool		bm25;			/* bm25's second pass: the terms, from these options */
	double		bm25_k1;
	double		bm25_b;
	double		mean_length;
	bool		item_sums;		/* pearson's first pass: the items' sums only */
	bool		pearson;		/* pearson's second pass: centred on these means */
	int32		n_means;
	int64	   *mean_ids;
	double	   *means;
	char	   *weight_col;
	int64		rows;
	double		max_abs;
	int32		q;
	double		last_w;			/* the last weight whose grid q includes */
	double		cpu_start;
	char	   *flat;			/* the encoding, once built */
	size_t		flat_len;
	/* PS_MERGE */
	Bundle		bundle;
} PsObject;

static Size PsGetFlatSize(ExpandedObjectHeader *eohptr);
static void PsFlattenInto(ExpandedObjectHeader *eohptr, void *result, Size allocated_size);

static const ExpandedObjectMethods PsMethods = {
	PsGetFlatSize,
	PsFlattenInto
};

static double
CpuSeconds(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts) != 0)
		return 0;
	return (double) ts.tv_sec + (double) ts.tv_nsec * 1e-9;
}

/* the largest state: its hex text form (Citus's transfer) must fit in 1 GB */
static size_t
StateLimit(void)
{
	return Min((size_t) work_memory_limit(), (size_t) (MaxAllocSize / 2 - 1024));
}

/* ---------- bundles ---------- */

static void
BundleInit(Bundle *b, MemoryContext cxt)
{
	memset(b, 0, sizeof(*b));
	b->cxt = cxt;
	b->limit = Min((size_t) work_memory_limit(), (size_t) (MaxAllocSize - VARHDRSZ - 1024));
	b->cap = 1024;
	b->buf = MemoryContextAlloc(cxt, b->cap);
	b->len = BUNDLE_HEADER;
	memset(b->buf, 0, BUNDLE_HEADER);
	for (int i = 0; i < 4; i++)
		b->buf[i] = (char) ((BUNDLE_MAGIC >> (8 * i)) & 0xFF);
}

static uint64
ReadLE(const char *p, int bytes)
{
	uint64		v = 0;

	for (int i = 0; i < bytes; i++)
		v |= (uint64) (unsigned char) p[i] << (8 * i);
	return v;
}

static void
BundleAddState(Bundle *b, const char *data, size_t len)
{
	CoreError	err;
	PairSumsHeader h;

	/*
	 * a state of another version (a node's library not yet upgraded) is kept
	 * as it is: the refresh then reads the rows, a merge refuses it
	 */
	if (!(len > 4 && ReadLE(data, 4) == PAIRSUMS_MAGIC && (uint8) data[4] != PAIRSUMS_VERSION) &&
		pairsums_header(data, len, &h, &err) != CORE_OK)
		core_pg_raise(&err);
	if (len > b->limit || b->len + 8 + len > b->limit)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("partial pair sums of the shards do not fit in maintenance_work_mem"),
				 errdetail("%d shard states hold %zu bytes; the next one has %zu; the limit is %zu bytes.",
						   b->n, b->len - BUNDLE_HEADER - 8 * (size_t) b->n, len, b->limit),
				 errhint("Raise maintenance_work_mem on the coordinator (it holds every shard's pair sums while they are merged), or lower the history lengths (the pair sums grow with their squares).")));
	if (b->len + 8 + len > b->cap)
	{
		size_t		cap = b->cap;

		while (cap < b->len + 8 + len)
			cap *= 2;
		cap = Min(cap, b->limit);
		b->buf = repalloc_huge(b->buf, cap);
		b->cap = cap;
	}
	for (int i = 0; i < 8; i++)
		b->buf[b->len + i] = (char) (((uint64) len >> (8 * i)) & 0xFF);
	memcpy(b->buf + b->len + 8, data, len);
	b->len += 8 + len;
	b->n++;
	for (int i = 0; i < 4; i++)
		b->buf[4 + i] = (char) (((uint32) b->n >> (8 * i)) & 0xFF);
}

static void pg_attribute_noreturn()
BadBundle(const char *what)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
			 errmsg("invalid partial pair sums"),
			 errdetail("%s.", what)));
}

/*
 * The states of a bundle as pointers into it (palloc'd arrays); each
 * state's header is checked by the merge.
 */
static void
BundleParse(const char *data, size_t len, const char ***states, size_t **lens, int *n)
{
	uint64		count;
	size_t		at = BUNDLE_HEADER;

	if (len < BUNDLE_HEADER || ReadLE(data, 4) != BUNDLE_MAGIC)
		BadBundle("Not a bundle of media_reco pair-sums states (the result of media_reco.pair_sums)");
	count = ReadLE(data + 4, 4);
	if (count > (len - BUNDLE_HEADER) / 8)
		BadBundle("The bundle lists more states than it has bytes");
	*states = palloc(sizeof(char *) * Max(count, 1));
	*lens = palloc(sizeof(size_t) * Max(count, 1));
	for (uint64 s = 0; s < count; s++)
	{
		uint64		l;

		if (len - at < 8)
			BadBundle("The bundle is truncated");
		l = ReadLE(data + at, 8);
		at += 8;
		if (l > len - at)
			BadBundle("The bundle is truncated");
		(*states)[s] = data + at;
		(*lens)[s] = (size_t) l;
		at += l;
	}
	if (at != len)
		BadBundle("The bundle has bytes after its last state");
	*n = (int) count;
}

/* add flat bytes: a shard's state or a whole bundle */
static void
BundleAddBytes(Bundle *b, const char *data, size_t len)
{
	if (len >= 4 && ReadLE(data, 4) == BUNDLE_MAGIC)
	{
		const char **states;
		size_t	   *lens;
		int			n;

		BundleParse(data, len, &states, &lens, &n);
		for (int s = 0; s < n; s++)
			BundleAddState(b, states[s], lens[s]);
		pfree(states);
		pfree(lens);
	}
	else
		BundleAddState(b, data, len);
}

/* ---------- the expanded state ---------- */

static PsObject *
PsCreate(MemoryContext parent, PsKind kind)
{
	MemoryContext cxt = AllocSetContextCreate(parent, "media_reco pair sums", ALLOCSET_DEFAULT_SIZES);
	PsObject   *o = MemoryContextAllocZero(cxt, sizeof(PsObject));

	EOH_init_header(&o->hdr, &PsMethods, cxt);
	o->kind = kind;
	if (kind == PS_MERGE)
		BundleInit(&o->bundle, cxt);
	return o;
}

/* our read-write state, or NULL when d is something else (a flat bytea) */
static PsObject *
PsOf(Datum d)
{
	ExpandedObjectHeader *eoh;

	if (!VARATT_IS_EXTERNAL_EXPANDED_RW(DatumGetPointer(d)))
		return NULL;
	eoh = DatumGetEOHP(d);
	return eoh->eoh_methods == &PsMethods ? (PsObject *) eoh : NULL;
}

/* encode the shard's rows once: the matrix is built, encoded and dropped */
static void
PsEncodeShard(PsObject *o)
{
	MemoryContext old;
	InteractionMatrix *m;
	PairSumsShard sh;
	CoreAlloc	a;
	CoreError	err;

	if (o->flat != NULL)
		return;
	old = MemoryContextSwitchTo(o->build);
	m = matrix_build(o->tb);
	MemoryContextSwitchTo(old);
	o->tb = NULL;
	memset(&sh, 0, sizeof(sh));
	sh.weighted = o->weighted;
	sh.centred = o->centred;
	sh.lengths = o->lengths;
	sh.bm25 = o->bm25;
	sh.bm25_k1 = o->bm25_k1;
	sh.bm25_b = o->bm25_b;
	sh.mean_length = o->mean_length;
	sh.item_sums = o->item_sums;
	sh.pearson = o->pearson;
	sh.n_means = o->n_means;
	sh.mean_ids = o->mean_ids;
	sh.means = o->means;
	sh.raw_rows = o->rows;
	sh.max_abs_raw = o->max_abs;
	sh.q = o->q == INT32_MAX ? 0 : o->q;
	sh.port = (uint16) PostPortNumber;
	core_pg_alloc(&a, o->hdr.eoh_context);
	core_pg_check(pairsums_encode(&a, m, &sh, StateLimit(), &interrupt_hooks,
								  &o->flat, &o->flat_len, &err), &err);
	/* the shard's whole CPU time: reading its rows, building, encoding */
	pairsums_set_seconds(o->flat, o->flat_len, Max(CpuSeconds() - o->cpu_start, 0.0));
	MemoryContextDelete(o->build);
	o->build = NULL;
}

static Size
PsGetFlatSize(ExpandedObjectHeader *eohptr)
{
	PsObject   *o = (PsObject *) eohptr;

	if (o->kind == PS_SHARD)
	{
		PsEncodeShard(o);
		return VARHDRSZ + o->flat_len;
	}
	return VARHDRSZ + o->bundle.len;
}

static void
PsFlattenInto(ExpandedObjectHeader *eohptr, void *result, Size allocated_size)
{
	PsObject   *o = (PsObject *) eohptr;

	SET_VARSIZE(result, allocated_size);
	if (o->kind == PS_SHARD)
		memcpy(VARDATA(result), o->flat, o->flat_len);
	else
		memcpy(VARDATA(result), o->bundle.buf, o->bundle.len);
}

static void
PsAddDatum(Bundle *b, Datum d)
{
	PsObject   *src = PsOf(d);

	if (src != NULL && src->kind == PS_SHARD)
	{
		PsEncodeShard(src);
		BundleAddState(b, src->flat, src->flat_len);
	}
	else if (src != NULL)
		BundleAddBytes(b, src->bundle.buf, src->bundle.len);
	else
	{
		bytea	   *v = DatumGetByteaPP(d);

		BundleAddBytes(b, VARDATA_ANY(v), VARSIZE_ANY_EXHDR(v));
	}
}

static void pg_attribute_noreturn()
NotInAggregate(const char *fn)
{
	ereport(ERROR,
			(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
			 errmsg("%s can only be called by the aggregate media_reco.pair_sums", fn)));
}

/*
 * the forms of pair_sums: (.., weighted boolean, ..), (metric, ..),
 * (metric, .., options jsonb), (metric, .., options jsonb, item_means bytea)
 */
typedef enum PsForm
{
	PS_FORM_BOOL,
	PS_FORM_METRIC,
	PS_FORM_OPTIONS,
	PS_FORM_MEANS
} PsForm;

/*
 * The first row's choice of sums.  The boolean form is pair_sums(user, item,
 * weight, weighted, weight_col); the metric forms pair_sums(metric, user,
 * item, weight, weight_col[, options]), whose metric names what the states
 * will be merged for.  (The metric comes first so that no call of the
 * boolean form, pair_sums(u, i, w, 't', NULL) included, resolves to a metric
 * form.)  bm25 without a mean_length option is its first pass (the users'
 * lengths); with one, its second (the terms' pair sums).  pearson without
 * item_means is its first pass (the items' sums); with them, its second
 * (the pair sums of the weights centred on them).
 */
static void
PsChooseSums(FunctionCallInfo fcinfo, PsForm form, PsObject *o)
{
	SimMetric	m;
	char	   *name;
	bool		have_mean = false;

	if (form == PS_FORM_BOOL)
	{
		check_not_null(fcinfo, 4, "weighted");
		o->weighted = PG_GETARG_BOOL(4);
		return;
	}
	check_not_null(fcinfo, 1, "metric");
	name = text_to_cstring(PG_GETARG_TEXT_PP(1));
	if (!sim_metric_parse(name, &m))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown metric \"%s\"", name),
				 errhint("pair_sums computes the sums of cosine, adjusted_cosine, pearson, jaccard, conditional and bm25.")));
	if (!pairsums_metric_merged(m))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("metric %s is not merged from pair sums", sim_metric_name(m)),
				 errhint("pair_sums computes the sums of cosine, adjusted_cosine, pearson, jaccard, conditional and bm25; %s is not a function of per-user pair sums.",
						 sim_metric_name(m))));
	o->weighted = SIM_IS_COSINE(m) || m == SIM_BM25;
	o->centred = m == SIM_ADJUSTED_COSINE;
	o->bm25_k1 = 100;			/* create_recommender's defaults */
	o->bm25_b = 0.8;
	if ((form == PS_FORM_OPTIONS || form == PS_FORM_MEANS) && !PG_ARGISNULL(6))
	{
		OptionReader r;
		char	   *key;
		JsonbValue	v;

		options_begin(&r, PG_GETARG_JSONB_P(6));
		while (options_next(&r, &key, &v))
		{
			if (m == SIM_BM25 && strcmp(key, "bm25_k1") == 0)
				o->bm25_k1 = option_number(key, &v, 0, DBL_MAX, false, "a finite number >= 0");
			else if (m == SIM_BM25 && strcmp(key, "bm25_b") == 0)
				o->bm25_b = option_number(key, &v, 0, 1, false, "a number between 0 and 1");
			else if (m == SIM_BM25 && strcmp(key, "mean_length") == 0)
			{
				o->mean_length = option_number(key, &v, -DBL_MAX, DBL_MAX, false,
											   "a finite number (pair_sums_mean_length of the first pass)");
				have_mean = true;
			}
			else
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("unknown option \"%s\" for metric %s", key, sim_metric_name(m)),
						 errhint("Only bm25 takes options: bm25_k1, bm25_b and mean_length.")));
		}
	}
	if (m == SIM_BM25)
	{
		o->lengths = !have_mean;
		o->bm25 = have_mean;
		o->weighted = have_mean;
	}
	if (form == PS_FORM_MEANS && !PG_ARGISNULL(7))
	{
		bytea	   *v = PG_GETARG_BYTEA_PP(7);
		CoreAlloc	a;
		CoreError	err;

		if (m != SIM_PEARSON)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("item_means are for pearson, not %s", sim_metric_name(m)),
					 errhint("Pass NULL as item_means for other metrics, or use the forms without them.")));
		core_pg_alloc(&a, o->hdr.eoh_context);
		core_pg_check(pairsums_means_decode(&a, VARDATA_ANY(v), VARSIZE_ANY_EXHDR(v), &o->mean_ids,
											&o->means, &o->n_means, &err), &err);
		o->pearson = true;
	}
	else if (m == SIM_PEARSON)
	{
		o->item_sums = true;
		o->weighted = false;
	}
}

/*
 * One row of pair_sums (pair_sums_step: (state, user, item, weight, weighted,
 * weight_col); pair_sums_metric_step: (state, metric, user, item, weight,
 * weight_col)).  Rows with a NULL user, item or weight are skipped (a
 * refresh's query reads only usable rows); a NaN or infinite weight is 22023
 * naming weight_col, as when one server reads it.
 */
static Datum
PsStep(FunctionCallInfo fcinfo, PsForm form)
{
	MemoryContext aggcxt;
	MemoryContext old;
	PsObject   *o;
	double		w;
	int			ua = form == PS_FORM_BOOL ? 1 : 2;	/* the user's argument; the item and weight follow */

	if (!AggCheckCallContext(fcinfo, &aggcxt))
		NotInAggregate(form == PS_FORM_BOOL ? "pair_sums_step" : "pair_sums_metric_step");
	if (PG_ARGISNULL(0))
	{
		o = PsCreate(aggcxt, PS_SHARD);
		PsChooseSums(fcinfo, form, o);
		if (!PG_ARGISNULL(5))
			o->weight_col = MemoryContextStrdup(o->hdr.eoh_context, text_to_cstring(PG_GETARG_TEXT_PP(5)));
		o->q = INT32_MAX;
		o->cpu_start = CpuSeconds();
		o->build = AllocSetContextCreate(o->hdr.eoh_context, "media_reco pair sums rows",
										 ALLOCSET_DEFAULT_SIZES);
		old = MemoryContextSwitchTo(o->build);
		o->tb = triples_create(work_memory_limit(), "maintenance_work_mem");
		MemoryContextSwitchTo(old);
	}
	else
	{
		o = PsOf(PG_GETARG_DATUM(0));
		if (o == NULL || o->kind != PS_SHARD)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("the state of media_reco.pair_sums must start empty"),
					 errdetail("Its transition function was given a state it did not build.")));
		if (o->tb == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("the state of media_reco.pair_sums was already encoded")));
	}
	if (PG_ARGISNULL(ua) || PG_ARGISNULL(ua + 1) || PG_ARGISNULL(ua + 2))
		PG_RETURN_DATUM(EOHPGetRWDatum(&o->hdr));
	w = PG_GETARG_FLOAT8(ua + 2);
	if (isnan(w) || isinf(w))
	{
		SourceSpec	s;

		memset(&s, 0, sizeof(s));
		s.weight_col = o->weight_col ? o->weight_col : "weight";
		check_weight_finite(&s, w);
	}
	o->rows++;
	o->max_abs = Max(o->max_abs, fabs(w));
	if (w != 0 && w != o->last_w)
	{
		/* most sources repeat a few weights (1, ratings): one grid each */
		o->q = Min(o->q, sim_weight_grid(w));
		o->last_w = w;
	}
	old = MemoryContextSwitchTo(o->build);
	triples_add(o->tb, PG_GETARG_INT64(ua), PG_GETARG_INT64(ua + 1), w);
	MemoryContextSwitchTo(old);
	if ((o->rows & 0xFFFF) == 0)
		CHECK_FOR_INTERRUPTS();
	PG_RETURN_DATUM(EOHPGetRWDatum(&o->hdr));
}

/* pair_sums_step(state, user, item, weight, weighted, weight_col) */
PG_FUNCTION_INFO_V1(pair_sums_step);
Datum
pair_sums_step(PG_FUNCTION_ARGS)
{
	return PsStep(fcinfo, PS_FORM_BOOL);
}

/* pair_sums_metric_step(state, metric, user, item, weight, weight_col[, options[, item_means]]) */
PG_FUNCTION_INFO_V1(pair_sums_metric_step);
Datum
pair_sums_metric_step(PG_FUNCTION_ARGS)
{
	return PsStep(fcinfo, PG_NARGS() > 7 ? PS_FORM_MEANS : PG_NARGS() > 6 ? PS_FORM_OPTIONS : PS_FORM_METRIC);
}

/* pair_sums_combine(a, b): the states of both, in one bundle */
PG_FUNCTION_INFO_V1(pair_sums_combine);
Datum
pair_sums_combine(PG_FUNCTION_ARGS)
{
	MemoryContext aggcxt;
	PsObject   *o = NULL;

	if (!AggCheckCallContext(fcinfo, &aggcxt))
		NotInAggregate("pair_sums_combine");
	if (PG_ARGISNULL(0) && PG_ARGISNULL(1))
		PG_RETURN_NULL();
	if (!PG_ARGISNULL(0))
		o = PsOf(PG_GETARG_DATUM(0));
	if (o == NULL || o->kind != PS_MERGE)
	{
		PsObject   *m = PsCreate(aggcxt, PS_MERGE);

		if (!PG_ARGISNULL(0))
			PsAddDatum(&m->bundle, PG_GETARG_DATUM(0));
		o = m;
	}
	if (!PG_ARGISNULL(1))
		PsAddDatum(&o->bundle, PG_GETARG_DATUM(1));
	PG_RETURN_DATUM(EOHPGetRWDatum(&o->hdr));
}

/* pair_sums_final(state): the bundle of every shard's state (none: an empty bundle) */
PG_FUNCTION_INFO_V1(pair_sums_final);
Datum
pair_sums_final(PG_FUNCTION_ARGS)
{
	Bundle		b;
	bytea	   *out;

	BundleInit(&b, CurrentMemoryContext);
	if (!PG_ARGISNULL(0))
		PsAddDatum(&b, PG_GETARG_DATUM(0));
	out = (bytea *) palloc_extended(VARHDRSZ + b.len, MCXT_ALLOC_HUGE);
	SET_VARSIZE(out, VARHDRSZ + b.len);
	memcpy(VARDATA(out), b.buf, b.len);
	pfree(b.buf);
	PG_RETURN_BYTEA_P(out);
}

/* ---------- merging ---------- */

static PairSumsResult *
MergeBundle(const char *data, size_t len, const SimParams *p, MemoryContext cxt)
{
	const char **states;
	size_t	   *lens;
	int			n;
	CoreAlloc	a;
	CoreError	err;
	PairSumsResult *res = MemoryContextAllocZero(cxt, sizeof(PairSumsResult));

	BundleParse(data, len, &states, &lens, &n);
	core_pg_alloc(&a, cxt);
	core_pg_check(pairsums_merge(&a, states, lens, n, p, &interrupt_hooks, res, &err), &err);
	pfree(states);
	pfree(lens);
	return res;
}

/*
 * The bundle argument 0 of a SQL function: a bytea as it is, or a bytea[]
 * (several bundles, e.g. one per group of users) merged as one in work;
 * NULL elements skipped.
 */
static void
ArgBundle(FunctionCallInfo fcinfo, MemoryContext work, const char **data, size_t *len)
{
	if (get_fn_expr_argtype(fcinfo->flinfo, 0) == BYTEAOID)
	{
		bytea	   *bundle = PG_GETARG_BYTEA_PP(0);

		*data = VARDATA_ANY(bundle);
		*len = VARSIZE_ANY_EXHDR(bundle);
	}
	else
	{
		ArrayType  *arr = PG_GETARG_ARRAYTYPE_P(0);
		Datum	   *elems;
		bool	   *enulls;
		int			nelems;
		Bundle		b;
		MemoryContext old = MemoryContextSwitchTo(work);

		deconstruct_array(arr, BYTEAOID, -1, false, TYPALIGN_INT, &elems, &enulls, &nelems);
		BundleInit(&b, work);
		for (int e = 0; e < nelems; e++)
			if (!enulls[e])
				PsAddDatum(&b, elems[e]);
		MemoryContextSwitchTo(old);
		*data = b.buf;
		*len = b.len;
	}
}

/*
 * The states of argument 0 (a bundle, or an array of them: ArgBundle), not
 * NULL, in a fresh context *work the caller deletes; returns their number.
 */
static int
ArgStates(FunctionCallInfo fcinfo, MemoryContext *work, const char ***states, size_t **lens)
{
	const char *data;
	size_t		len;
	int			n;

	check_not_null(fcinfo, 0, "bundle");
	*work = AllocSetContextCreate(CurrentMemoryContext, "media_reco pair sums argument", ALLOCSET_DEFAULT_SIZES);
	ArgBundle(fcinfo, *work, &data, &len);
	BundleParse(data, len, states, lens, &n);
	return n;
}

/*
 * pair_sums_mean_length(bundle): BM25's mean history length over the users
 * of a bundle of first-pass states (pair_sums('bm25', ...) without options),
 * the mean_length option of the second pass.
 */
PG_FUNCTION_INFO_V1(pair_sums_mean_length);
Datum
pair_sums_mean_length(PG_FUNCTION_ARGS)
{
	const char **states;
	size_t	   *lens;
	MemoryContext work;
	int			n = ArgStates(fcinfo, &work, &states, &lens);
	double		mean;
	int64		users;
	CoreError	err;

	core_pg_check(pairsums_mean_length(states, lens, n, &mean, &users, &err), &err);
	MemoryContextDelete(work);
	PG_RETURN_FLOAT8(mean);
}

/*
 * pair_sums_item_means(bundle): Pearson's item means over the users of a
 * bundle of first-pass states (pair_sums('pearson', ...) without
 * item_means), the item_means argument of the second pass.
 */
PG_FUNCTION_INFO_V1(pair_sums_item_means);
Datum
pair_sums_item_means(PG_FUNCTION_ARGS)
{
	const char **states;
	size_t	   *lens;
	MemoryContext work;
	int			n = ArgStates(fcinfo, &work, &states, &lens);
	char	   *blob;
	size_t		blen;
	bytea	   *out;
	CoreAlloc	a;
	CoreError	err;

	core_pg_alloc(&a, work);
	core_pg_check(pairsums_item_means(&a, states, lens, n, &interrupt_hooks, &blob, &blen, &err), &err);
	if (blen > MaxAllocSize - VARHDRSZ)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("the item means take %zu bytes, more than a bytea holds", blen)));
	out = (bytea *) palloc(VARHDRSZ + blen);
	SET_VARSIZE(out, VARHDRSZ + blen);
	memcpy(VARDATA(out), blob, blen);
	MemoryContextDelete(work);
	PG_RETURN_BYTEA_P(out);
}

/*
 * pair_sums_neighbors(bundle, metric, k, min_support, shrinkage): the
 * merged top-k lists of a bundle (or of an array of bundles, whose users must
 * be disjoint), rows as item_similarity's.  0A000 when the weights do not
 * allow an exact merge.
 */
PG_FUNCTION_INFO_V1(pair_sums_neighbors);
Datum
pair_sums_neighbors(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	SimParams	p;
	MemoryContext work;
	PairSumsResult *res;
	const char *metric;
	const char *data;
	size_t		len;

	check_not_null(fcinfo, 0, "bundle");
	check_not_null(fcinfo, 1, "metric");
	check_not_null(fcinfo, 2, "k");
	check_not_null(fcinfo, 3, "min_support");
	check_not_null(fcinfo, 4, "shrinkage");
	metric = arg_text_or_null(fcinfo, 1);
	check_sim_params(metric, PG_GETARG_INT32(2), PG_GETARG_INT32(3), PG_GETARG_FLOAT8(4), &p);
	if (!pairsums_metric_merged(p.metric))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("metric \"%s\" cannot be merged from pair sums", metric),
				 errhint("Pair sums serve cosine, adjusted_cosine, pearson, jaccard, conditional and bm25; compute the others with item_similarity.")));
	work = AllocSetContextCreate(CurrentMemoryContext, "media_reco pair_sums_neighbors",
								 ALLOCSET_DEFAULT_SIZES);
	ArgBundle(fcinfo, work, &data, &len);
	res = MergeBundle(data, len, &p, work);
	InitMaterializedSRF(fcinfo, 0);
	if (!res->exact)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("these pair sums cannot be merged exactly"),
				 errdetail("%s.", res->why),
				 errhint("Compute the neighbours with item_similarity over the rows instead.")));
	neighbor_rows_put(rsinfo, res->item_ids, res->lists);
	MemoryContextDelete(work);
	return (Datum) 0;
}

/* ---------- the distributed refresh ---------- */

/*
 * With the setting at auto: whether the pair sums would move more bytes to
 * the coordinator than the rows (then the rows are read: NULL when not).
 * A shard's state lists each item's co-occurring items once, at most
 * I (I - 1) entries over I items and at most Σ_u n_u (n_u - 1) over its
 * users' histories; an entry takes about 4 bytes (3 for counts only, or
 * unweighted), but about 16 when the sums go in fixed point (a 128-bit
 * varint): adjusted cosine's and pearson's centred weights, BM25's terms, or a cosine's weights that are
 * not all multiples of 2^-12 (the pass checks); a row takes about 12 bytes
 * as text.  One pass over the shards (SPI connected).
 */
static char *
PairSumsNotWorthwhile(const SourceSpec *src, const SimParams *p)
{
	StringInfoData sql;
	Oid			types[1] = {OIDOID};
	Datum		values[1] = {ObjectIdGetDatum(src->relid)};
	int			rc;
	bool		isnull;
	double		rows,
				pairs,
				items,
				shards,
				entries,
				push,
				pull;
	int			per_entry;
	bool		on_grid;

	if (src->time_col && (SIM_IS_COSINE(p->metric) || p->metric == SIM_BM25))
	{
		/*
		 * decayed weights of times further apart than 2^22 : 1 allows (22
		 * half-lives) make the merge refuse the popular items, which span
		 * the whole range: then read the rows now
		 */
		double		span;

		rc = SPI_execute(source_time_span_sql(src), true, 1);
		if (rc != SPI_OK_SELECT || SPI_processed != 1)
			elog(ERROR, "estimating the pair sums failed: %s", SPI_result_code_string(rc));
		span = DatumGetFloat8(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
		if (!isnull && span / src->half_life >= SIM_FIXED_SPAN)
			return psprintf("media_reco.citus_pair_sums is auto and the times span %.0f half-lives: decayed weights spanning 2^%d : 1 or more within an item are beyond what fixed-point sums add exactly",
							span / src->half_life, SIM_FIXED_SPAN);
	}

	/* three queries: Citus plans no subquery in a target list */
	initStringInfo(&sql);
	appendStringInfoString(&sql, "SELECT pg_catalog.sum(n)::pg_catalog.float8, pg_catalog.sum(n::pg_catalog.float8 * (n - 1)),"
						   " pg_catalog.bool_and(g) FROM (SELECT pg_catalog.count(*) AS n, ");
	if (p->metric == SIM_COSINE && src->weight_col)
		appendStringInfo(&sql, "pg_catalog.bool_and((%s)::pg_catalog.float8 * 4096"
						 " OPERATOR(pg_catalog.=) pg_catalog.trunc((%s)::pg_catalog.float8 * 4096)) AS g",
						 quote_identifier(src->weight_col), quote_identifier(src->weight_col));
	else
		appendStringInfoString(&sql, "true AS g");
	appendStringInfo(&sql, " FROM %s WHERE ", source_relname(src));
	source_append_usable(&sql, src, NULL);
	appendStringInfo(&sql, " GROUP BY %s) s", quote_identifier(src->user_col));
	rc = SPI_execute(sql.data, true, 1);
	if (rc != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "estimating the pair sums failed: %s", SPI_result_code_string(rc));
	rows = DatumGetFloat8(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	if (isnull)
		return NULL;			/* no rows: nothing to move either way */
	pairs = DatumGetFloat8(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
	on_grid = p->metric == SIM_COSINE && src->time_col == NULL &&
		DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3, &isnull));

	resetStringInfo(&sql);
	appendStringInfo(&sql, "SELECT pg_catalog.count(DISTINCT %s)::pg_catalog.float8 FROM %s WHERE ",
					 quote_identifier(src->item_col), source_relname(src));
	source_append_usable(&sql, src, NULL);
	rc = SPI_execute(sql.data, true, 1);
	if (rc != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "estimating the pair sums failed: %s", SPI_result_code_string(rc));
	items = DatumGetFloat8(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));

	rc = SPI_execute_with_args("SELECT pg_catalog.count(*)::pg_catalog.float8 FROM pg_catalog.pg_dist_shard"
							   " WHERE logicalrelid OPERATOR(pg_catalog.=) $1",
							   1, types, values, NULL, true, 1);
	if (rc != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "reading pg_dist_shard failed: %s", SPI_result_code_string(rc));
	shards = DatumGetFloat8(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	entries = Min(Max(shards, 1) * items * Max(items - 1, 0), pairs);
	/* sums beside the counts for a weighted cosine (an unweighted one sends them only for duplicates) */
	if (p->metric == SIM_BM25)
		per_entry = 16;			/* BM25's terms are off every grid */
	else if (p->metric == SIM_PEARSON || p->metric == SIM_ADJUSTED_COSINE)
		per_entry = 16;			/* so are weights minus means, mostly (11/3) */
	else if (SIM_IS_COSINE(p->metric) && src->weight_col != NULL)
		per_entry = on_grid ? 4 : 16;
	else
		per_entry = 3;
	push = entries * per_entry;
	/*
	 * Pearson's second query carries every item's mean to every shard (about
	 * 20 bytes of hex each), and each shard's state its items' figures (about
	 * 35 bytes an item)
	 */
	if (p->metric == SIM_PEARSON)
		push += Max(shards, 1) * items * (20 + 35);
	pull = rows * 12;
	if (push < pull)
		return NULL;
	return psprintf("media_reco.citus_pair_sums is auto and the pair sums would move more bytes than the rows"
					" (up to %.0f entries, about %.1f MB, against %.0f rows, about %.1f MB)",
					entries, push / 1e6, rows, pull / 1e6);
}

char *
pairsums_ineligible(const SourceSpec *src, const SimParams *p)
{
	MemoryContext caller = CurrentMemoryContext;
	char	   *why = NULL;
	Oid			types[1] = {OIDOID};
	Datum		values[1];
	int			rc;

	if (media_reco_citus_pair_sums == CITUS_PAIR_SUMS_OFF)
		return pstrdup("media_reco.citus_pair_sums is off");
	if (!pairsums_metric_merged(p->metric))
		return psprintf("%s is not a function of per-user pair sums and counts alone (only cosine, adjusted_cosine, pearson, jaccard, conditional and bm25 are)",
						sim_metric_name(p->metric));
	if (src->time_col && source_decayed_weight_sql(src) == NULL)
		return psprintf("the time column \"%s\" is a timestamp without time zone: local time in this session's TimeZone, which the workers do not share",
						src->time_col);

	values[0] = ObjectIdGetDatum(src->relid);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	rc = SPI_execute_with_args("SELECT partmethod::pg_catalog.text,"
							   " CASE WHEN partmethod OPERATOR(pg_catalog.=) 'h'"
							   "  THEN pg_catalog.column_to_column_name(logicalrelid, partkey) END"
							   " FROM pg_catalog.pg_dist_partition"
							   " WHERE logicalrelid OPERATOR(pg_catalog.=) $1",
							   1, types, values, NULL, true, 1);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "reading pg_dist_partition failed: %s", SPI_result_code_string(rc));
	if (SPI_processed == 0)
		why = "the source is not a distributed table";
	else
	{
		char	   *method = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
		char	   *col = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2);

		if (method == NULL || strcmp(method, "h") != 0)
			why = psprintf("the source is a %s table, not hash-distributed",
						   method && strcmp(method, "n") == 0 ? "reference" : "Citus local or append-distributed");
		else if (col == NULL || strcmp(col, src->user_col) != 0)
			why = psprintf("the source is distributed by \"%s\", not by its user column \"%s\"",
						   col ? col : "?", src->user_col);
	}
	if (why == NULL)
	{
		/*
		 * the metric forms of pair_sums are 0.9.0's, Pearson's second pass
		 * and the decay 0.10.0's: not before ALTER EXTENSION UPDATE
		 */
		int			major = 0,
					minor = 0;
		bool		new10 = p->metric == SIM_PEARSON || src->time_col != NULL;

		rc = SPI_execute("SELECT extversion FROM pg_catalog.pg_extension WHERE extname OPERATOR(pg_catalog.=) 'media_reco'",
						 true, 1);
		if (rc == SPI_OK_SELECT && SPI_processed == 1)
		{
			char	   *v = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);

			if (v == NULL || sscanf(v, "%d.%d", &major, &minor) != 2)
				major = minor = 0;
			if (major == 0 && minor < (new10 ? 10 : 9))
				why = psprintf("media_reco %s is installed in this database: %s on the workers needs %s (ALTER EXTENSION media_reco UPDATE)",
							   v ? v : "?", src->time_col ? "time decay" : sim_metric_name(p->metric),
							   new10 ? "0.10.0" : "0.9.0");
		}
	}
	if (why == NULL && media_reco_citus_pair_sums == CITUS_PAIR_SUMS_AUTO)
	{
		/* sequential after citus_setup(), as every read a refresh then follows with writes */
		int			nest = citus_read_begin(src->relid);

		why = PairSumsNotWorthwhile(src, p);
		citus_read_end(nest);
	}
	if (why)
		why = MemoryContextStrdup(caller, why);
	SPI_finish();
	return why;
}

/*
 * receives the aggregate's rows (one bundle per group of users: per shard):
 * each is copied into work, its states listed, their total bytes counted
 * against maintenance_work_mem
 */
typedef struct BundleReceiver
{
	DestReceiver pub;
	MemoryContext work;
	const char **states;
	size_t	   *lens;
	int			n;
	int			cap;
	int64		bytes;
} BundleReceiver;

static bool
BundleReceive(TupleTableSlot *slot, DestReceiver *self)
{
	BundleReceiver *r = (BundleReceiver *) self;
	bytea	   *v;
	char	   *copy;
	size_t		len;
	const char **states;
	size_t	   *lens;
	int			n;
	MemoryContext old;

	slot_getallattrs(slot);
	if (slot->tts_isnull[0])
		return true;
	v = DatumGetByteaPP(slot->tts_values[0]);
	len = VARSIZE_ANY_EXHDR(v);
	if ((Size) r->bytes + len > work_memory_limit())
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("partial pair sums of the shards do not fit in maintenance_work_mem"),
				 errdetail("%d shard states hold " INT64_FORMAT " bytes; the next %zu would pass the limit of %zu bytes.",
						   r->n, r->bytes, len, (size_t) work_memory_limit()),
				 errhint("Raise maintenance_work_mem on the coordinator (it holds every shard's pair sums while they are merged), or read the rows instead: SET media_reco.citus_pair_sums = off.")));
	old = MemoryContextSwitchTo(r->work);
	copy = palloc_extended(Max(len, 1), MCXT_ALLOC_HUGE);
	memcpy(copy, VARDATA_ANY(v), len);
	BundleParse(copy, len, &states, &lens, &n);
	if (r->n + n > r->cap)
	{
		r->cap = Max(r->cap * 2, r->n + n + 8);
		r->states = r->states ? repalloc(r->states, sizeof(char *) * r->cap) : palloc(sizeof(char *) * r->cap);
		r->lens = r->lens ? repalloc(r->lens, sizeof(size_t) * r->cap) : palloc(sizeof(size_t) * r->cap);
	}
	for (int s = 0; s < n; s++)
	{
		r->states[r->n] = states[s];
		r->lens[r->n++] = lens[s];
	}
	MemoryContextSwitchTo(old);
	r->bytes += len;
	if ((Pointer) v != DatumGetPointer(slot->tts_values[0]))
		pfree(v);
	return true;
}

static void
BundleStartup(DestReceiver *self, int operation, TupleDesc typeinfo)
{
}

static void
BundleShutdown(DestReceiver *self)
{
}

static void
BundleDestroy(DestReceiver *self)
{
}

/*
 * Run pair_sums for p over src (SPI connected), one result row per shard
 * (grouped by shard_mins when known), its states collected into recv (in
 * work).  options: the metric form's jsonb (BM25's second pass), or NULL;
 * means (mlen bytes): Pearson's item means for its second pass, or NULL.
 */
static void
GatherStates(const SourceSpec *src, const SimParams *p, const char *options, const char *means, size_t mlen,
			 const char *shard_mins, MemoryContext work, bool read_only, BundleReceiver *recv)
{
	StringInfoData sql;
	SPIExecuteOptions opts;
	int			nest;
	int			rc;

	initStringInfo(&sql);
	/* the metric form: the workers centre adjusted cosine's weights by user, compute BM25's terms */
	appendStringInfo(&sql, "SELECT media_reco.pair_sums(%s::pg_catalog.text, (%s)::pg_catalog.int8, (%s)::pg_catalog.int8, ",
					 quote_literal_cstr(sim_metric_name(p->metric)),
					 quote_identifier(src->user_col), quote_identifier(src->item_col));
	/* decayed weights: computed on the workers as one server computes them */
	if (src->time_col)
		appendStringInfoString(&sql, source_decayed_weight_sql(src));
	else if (src->weight_col)
		appendStringInfo(&sql, "(%s)::pg_catalog.float8", quote_identifier(src->weight_col));
	else
		appendStringInfoString(&sql, "1::pg_catalog.float8");
	if (src->weight_col)
		appendStringInfo(&sql, ", %s::pg_catalog.text", quote_literal_cstr(src->weight_col));
	else
		appendStringInfoString(&sql, ", NULL::pg_catalog.text");
	if (options)
		appendStringInfo(&sql, ", %s::pg_catalog.jsonb", quote_literal_cstr(options));
	if (means)
	{
		/* the means as a bytea literal (E'' whatever standard_conforming_strings): Citus sends it to every shard */
		static const char hex[] = "0123456789abcdef";

		if (!options)
			appendStringInfoString(&sql, ", NULL::pg_catalog.jsonb");
		if (mlen > (MaxAllocSize - (Size) sql.len) / 2 - 1024)
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("Pearson's item means take %zu bytes, too many for the query that sends them to the shards", mlen)));
		enlargeStringInfo(&sql, (int) (2 * mlen + 64));
		appendStringInfoString(&sql, ", E'\\\\x");
		for (size_t b = 0; b < mlen; b++)
		{
			unsigned char c = (unsigned char) means[b];

			sql.data[sql.len++] = hex[c >> 4];
			sql.data[sql.len++] = hex[c & 15];
		}
		sql.data[sql.len] = '\0';
		appendStringInfoString(&sql, "'::pg_catalog.bytea");
	}
	appendStringInfo(&sql, ") FROM %s WHERE ", source_relname(src));
	source_append_usable(&sql, src, NULL);
	/*
	 * One result row per shard (its users): the coordinator's combine then
	 * never holds more than one shard's state in one value (a bytea is at
	 * most 1 GB); the states are gathered below.  Any function of the user
	 * keeps the states' users disjoint; this one follows the shards.
	 */
	if (shard_mins != NULL)
		appendStringInfo(&sql, " GROUP BY pg_catalog.width_bucket(pg_catalog.worker_hash(%s), %s::pg_catalog.int4[])",
						 quote_identifier(src->user_col), quote_literal_cstr(shard_mins));

	recv->pub.receiveSlot = BundleReceive;
	recv->pub.rStartup = BundleStartup;
	recv->pub.rShutdown = BundleShutdown;
	recv->pub.rDestroy = BundleDestroy;
	recv->pub.mydest = DestNone;
	recv->work = work;

	memset(&opts, 0, sizeof(opts));
	opts.read_only = read_only;
	opts.dest = (DestReceiver *) recv;
	nest = citus_read_begin(src->relid);
	rc = SPI_execute_extended(sql.data, &opts);
	citus_read_end(nest);
	if (rc != SPI_OK_SELECT && rc != SPI_OK_UTILITY)
		elog(ERROR, "computing the pair sums failed: %s", SPI_result_code_string(rc));
	pfree(sql.data);
}

/* why the states received cannot be merged here: another version wrote one (NULL: none did) */
static char *
OtherVersion(const BundleReceiver *r)
{
	for (int s = 0; s < r->n; s++)
		if (r->lens[s] > 4 && (uint8) r->states[s][4] != PAIRSUMS_VERSION)
			return psprintf("a worker's media_reco library writes pair sums of version %d, this one's %d (install the same library on every node)",
							(uint8) r->states[s][4], PAIRSUMS_VERSION);
	return NULL;
}

NeighborLists *
pairsums_refresh(const SourceSpec *src, const SimParams *p, MemoryContext work, bool read_only,
				 InteractionMatrix **m_out, SimRunStats *stats, char **why)
{
	BundleReceiver recv;
	instr_time	start;
	int			rc;
	PairSumsResult *res;
	InteractionMatrix *m;
	char	   *shard_mins = NULL;
	char	   *options = NULL;
	double		first_mean = 0;
	char	   *means = NULL;
	size_t		means_len = 0;
	CoreAlloc	a;
	CoreError	err;

	*why = NULL;
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	{
		Oid			types[1] = {OIDOID};
		Datum		values[1] = {ObjectIdGetDatum(src->relid)};

		rc = SPI_execute_with_args("SELECT pg_catalog.array_agg(shardminvalue::pg_catalog.int4"
								   "  ORDER BY shardminvalue::pg_catalog.int4)::pg_catalog.text"
								   " FROM pg_catalog.pg_dist_shard WHERE logicalrelid OPERATOR(pg_catalog.=) $1",
								   1, types, values, NULL, true, 1);
		if (rc != SPI_OK_SELECT)
			elog(ERROR, "reading pg_dist_shard failed: %s", SPI_result_code_string(rc));
		if (SPI_processed == 1)
		{
			char	   *v = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);

			shard_mins = v ? MemoryContextStrdup(work, v) : NULL;
		}
	}
	memset(&recv, 0, sizeof(recv));
	INSTR_TIME_SET_CURRENT(start);
	if (p->metric == SIM_BM25 || p->metric == SIM_PEARSON)
	{
		/* the first pass: BM25's users' lengths (their mean), Pearson's items' sums (the items' means) */
		BundleReceiver first;

		memset(&first, 0, sizeof(first));
		GatherStates(src, p, NULL, NULL, 0, shard_mins, work, read_only, &first);
		if (OtherVersion(&first) != NULL)
		{
			/* the reason in the caller's context: SPI_finish frees SPI's (the states are in work) */
			SPI_finish();
			*why = OtherVersion(&first);
			return NULL;
		}
		if (p->metric == SIM_BM25)
		{
			int64		users;
			double		mean;

			core_pg_check(pairsums_mean_length(first.states, first.lens, first.n, &mean, &users, &err), &err);
			if (!isfinite(mean))
			{
				/* one server's norms are then 1 - B: not a value the second pass can be given */
				SPI_finish();
				*why = pstrdup("BM25's mean history length is beyond double precision");
				return NULL;
			}
			options = psprintf("{\"bm25_k1\": %.17g, \"bm25_b\": %.17g, \"mean_length\": %.17g}",
							   p->bm25_k1, p->bm25_b, mean);
			first_mean = mean;
		}
		else
		{
			core_pg_alloc(&a, work);
			core_pg_check(pairsums_item_means(&a, first.states, first.lens, first.n, &interrupt_hooks,
											  &means, &means_len, &err), &err);
		}
		stats->first_pass_seconds = elapsed_seconds(start);
	}
	GatherStates(src, p, options, means, means_len, shard_mins, work, read_only, &recv);
	SPI_finish();
	if ((*why = OtherVersion(&recv)) != NULL)
		return NULL;
	stats->gather_seconds = elapsed_seconds(start);
	if (p->metric == SIM_BM25)
	{
		/* rows committed between the passes change the users' lengths: then read the rows */
		int64		users;
		double		mean;

		core_pg_check(pairsums_mean_length(recv.states, recv.lens, recv.n, &mean, &users, &err), &err);
		if (memcmp(&mean, &first_mean, sizeof(double)) != 0)
		{
			*why = pstrdup("the rows changed between BM25's two passes over the shards");
			return NULL;
		}
	}

	INSTR_TIME_SET_CURRENT(start);
	res = MemoryContextAllocZero(work, sizeof(PairSumsResult));
	core_pg_alloc(&a, work);
	core_pg_check(pairsums_merge(&a, recv.states, recv.lens, recv.n, p, &interrupt_hooks, res, &err), &err);
	stats->merge_seconds = elapsed_seconds(start);
	stats->states = res->n_states;
	stats->state_bytes = recv.bytes;
	stats->shard_seconds_sum = res->shard_seconds_sum;
	stats->shard_seconds_max = res->shard_seconds_max;
	stats->n_nodes = Min(res->n_nodes, 8);
	for (int i = 0; i < stats->n_nodes; i++)
	{
		stats->node_port[i] = res->node_port[i];
		stats->node_seconds[i] = res->node_seconds[i];
	}
	stats->interactions = res->raw_rows;
	stats->users = res->users;
	stats->items = res->n_items;
	stats->nnz = res->nnz;
	stats->peak_bytes = MemoryContextMemAllocated(work, true);
	if (!res->exact)
	{
		*why = pstrdup(res->why);
		return NULL;
	}
	m = MemoryContextAllocZero(work, sizeof(InteractionMatrix));
	m->n_users = (int32) Min(res->users, (int64) PG_INT32_MAX);
	m->n_items = res->n_items;
	m->nnz = res->nnz;
	m->raw_rows = res->raw_rows;
	m->item_ids = res->item_ids;
	stats->pairs = res->lists->pairs;
	stats->pushed_down = true;
	stats->fixed_point = res->fixed;
	stats->read_seconds = stats->gather_seconds;
	stats->compute_seconds = stats->merge_seconds;
	*m_out = m;
	return res->lists;
}
