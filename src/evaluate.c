/*
 * evaluate.c
 *	  The evaluation loop in SQL: split an interaction table into train and
 *	  test tables, and score a recommender on the test interactions against
 *	  a popularity baseline.
 *
 * Both functions build one statement from quoted identifiers (a relation
 * given as regclass, column names from the catalog or the registry) and
 * pass every value as a parameter.
 */
#include "postgres.h"

#include <math.h>

#include "access/relation.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/varlena.h"

#include "als.h"
#include "neighbors.h"
#include "source.h"
#include "util.h"

PG_FUNCTION_INFO_V1(split_interactions);
PG_FUNCTION_INFO_V1(evaluate_recommender);
PG_FUNCTION_INFO_V1(evaluate_als);

/*
 * A table name given as text, parsed as a possibly qualified identifier and
 * returned quoted and qualified with the schema it will be created in, so
 * that every later statement names the same table (an unqualified name would
 * otherwise be looked up again through search_path, where pg_temp comes
 * first).
 */
static char *
QuotedNewTable(text *t, const char *argname)
{
	List	   *names = textToQualifiedNameList(t);
	RangeVar   *rv = makeRangeVarFromNameList(names);
	Oid			nsp;

	if (rv->catalogname)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_NAME),
				 errmsg("%s must not name a database", argname)));
	nsp = RangeVarGetCreationNamespace(rv);
	return quote_qualified_identifier(get_namespace_name(nsp), rv->relname);
}

static AttrNumber
RequireColumn(Oid relid, const char *col, const char *role)
{
	AttrNumber	att = get_attnum(relid, col);

	if (att == InvalidAttrNumber || att < 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("column \"%s\" (%s column) does not exist in relation \"%s\"",
						col, role, get_rel_name(relid))));
	return att;
}

/*
 * The source's columns, quoted and qualified with `alias`, in attribute
 * order ("x.a, x.b"); and in *flag a column name none of them has, so that a
 * flag computed beside them can neither be shadowed by nor shadow a user
 * column.
 */
static char *
QualifiedColumns(Oid relid, const char *alias, char **flag)
{
	Relation	rel = relation_open(relid, NoLock);	/* locked by source_lock_relation */
	TupleDesc	td = RelationGetDescr(rel);
	StringInfoData cols;
	char	   *name = pstrdup("media_reco_is_test");
	bool		taken = true;

	initStringInfo(&cols);
	for (int a = 0; a < td->natts; a++)
	{
		Form_pg_attribute att = TupleDescAttr(td, a);

		if (att->attisdropped)
			continue;
		appendStringInfo(&cols, "%s%s.%s", cols.len > 0 ? ", " : "", alias,
						 quote_identifier(NameStr(att->attname)));
	}
	for (int suffix = 1; taken; suffix++)
	{
		taken = false;
		for (int a = 0; a < td->natts && !taken; a++)
		{
			Form_pg_attribute att = TupleDescAttr(td, a);

			taken = !att->attisdropped && strcmp(NameStr(att->attname), name) == 0;
		}
		if (taken)
			name = psprintf("media_reco_is_test_%d", suffix);
	}
	relation_close(rel, NoLock);
	*flag = name;
	return cols.data;
}

/*
 * split_interactions(source, train_table, test_table, method, test_fraction,
 *					  seed, time_col, user_col)
 *
 * 'random': each row goes to the test table when a seeded hash of its
 * values falls below test_fraction (identical rows go together; the same
 * seed gives the same split).  'temporal': each user's latest
 * floor(n * test_fraction) rows with a non-NULL time go to the test table
 * (ties broken by the same seeded hash), where the product is exact: the
 * fraction is taken as the decimal it prints as (15 significant digits, the
 * float8-to-numeric cast), so 0.7 of 90 rows is 63, not the 62 of binary
 * floating point.  Every other row goes to train.
 *
 * Every column reference in the generated statement is qualified, the row
 * is hashed as `t.*` (a whole-row reference no column name can shadow) and
 * the flag column gets a name the source does not use, so the statement
 * means the same whatever the source's columns are called.
 */
Datum
split_interactions(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Oid			relid;
	char	   *src,
			   *train,
			   *test,
			   *method;
	double		frac;
	int64		seed;
	char	   *time_col,
			   *user_col;
	char	   *from;
	char	   *cols;
	char	   *flag;
	Oid			types[2] = {INT8OID, FLOAT8OID};
	Datum		args[2];
	int64		counts[2];

	for (int a = 0; a <= 5; a++)
		check_not_null(fcinfo, a, (const char *[]) {"source", "train_table", "test_table", "method",
		"test_fraction", "seed"}[a]);
	relid = PG_GETARG_OID(0);
	method = text_to_cstring(PG_GETARG_TEXT_PP(3));
	frac = PG_GETARG_FLOAT8(4);
	seed = PG_GETARG_INT32(5);
	time_col = arg_name_or_null(fcinfo, 6);
	user_col = PG_ARGISNULL(7) ? "user_id" : arg_name_or_null(fcinfo, 7);
	if (!(frac > 0 && frac < 1))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("test_fraction must be between 0 and 1 (exclusive), got %g", frac)));
	if (strcmp(method, "random") != 0 && strcmp(method, "temporal") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown split method \"%s\"", method),
				 errhint("Use 'random' or 'temporal'.")));
	src = source_lock_relation(relid);
	train = QuotedNewTable(PG_GETARG_TEXT_PP(1), "train_table");
	test = QuotedNewTable(PG_GETARG_TEXT_PP(2), "test_table");
	if (strcmp(train, test) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("train_table and test_table must differ")));
	cols = QualifiedColumns(relid, "x", &flag);

	if (strcmp(method, "random") == 0)
	{
		if (time_col)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("time_col applies to the temporal method only")));
		/* the low 53 bits of a seeded hash of the row's values, as a fraction */
		from = psprintf("(SELECT t.*, ((pg_catalog.hash_record_extended(t.*, $1)"
						" OPERATOR(pg_catalog.&) 9007199254740991)::pg_catalog.float8"
						" OPERATOR(pg_catalog./) 9007199254740992) OPERATOR(pg_catalog.<) $2"
						" AS %s FROM %s t) x", flag, src);
	}
	else
	{
		if (time_col == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("the temporal method needs time_col")));
		RequireColumn(relid, time_col, "time");
		RequireColumn(relid, user_col, "user");
		from = psprintf("(SELECT t.*, (t.%s IS NOT NULL AND pg_catalog.row_number() OVER w"
						" OPERATOR(pg_catalog.<=) pg_catalog.floor(pg_catalog.count(t.%s) OVER p"
						" OPERATOR(pg_catalog.*) ($2)::pg_catalog.numeric)) AS %s FROM %s t"
						" WINDOW p AS (PARTITION BY t.%s),"
						" w AS (PARTITION BY t.%s ORDER BY t.%s DESC NULLS LAST,"
						" pg_catalog.hash_record_extended(t.*, $1))) x",
						quote_identifier(time_col), quote_identifier(time_col), flag, src,
						quote_identifier(user_col), quote_identifier(user_col),
						quote_identifier(time_col));
	}

	args[0] = Int64GetDatum(seed);
	args[1] = Float8GetDatum(frac);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");

	/*
	 * Both tables are filled from one snapshot, the calling statement's: with
	 * a fresh snapshot per statement, a row committed between the two could
	 * land in neither table or in both, and the temporal ranks could shift.
	 * SPI_execute_snapshot needs a plan, so each statement is prepared here
	 * and freed at once: a one-shot DDL, not for plan_cache.c.
	 */
	for (int side = 0; side < 2; side++)
	{
		/* the flag is computed in the subquery and never reaches the table */
		char	   *sql = psprintf("CREATE TABLE %s AS SELECT %s FROM %s WHERE %s",
								   side == 0 ? train : test, cols, from,
								   psprintf(side == 0 ? "x.%s IS NOT TRUE" : "x.%s", flag));
		SPIPlanPtr	plan = SPI_prepare(sql, 2, types);
		int			rc;

		if (plan == NULL)
			elog(ERROR, "preparing the split failed: %s", SPI_result_code_string(SPI_result));
		rc = SPI_execute_snapshot(plan, args, NULL, GetActiveSnapshot(), InvalidSnapshot,
								  false, false, 0);
		if (rc != SPI_OK_UTILITY && rc != SPI_OK_SELINTO)
			elog(ERROR, "creating the split table failed: %s", SPI_result_code_string(rc));
		counts[side] = (int64) SPI_processed;
		SPI_freeplan(plan);
	}
	SPI_finish();

	InitMaterializedSRF(fcinfo, 0);
	{
		Datum		values[2] = {Int64GetDatum(counts[0]), Int64GetDatum(counts[1])};
		bool		nulls[2] = {false, false};

		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

/*
 * Phase 1 of evaluate: the seen items of test users, in a temporary table,
 * over the source's usable rows; returns the largest such history.  Queries
 * after this one run with read_only = false so that they see the table.
 */
static int64
CollectSeen(const SourceSpec *src, const char *test)
{
	const char *u = quote_identifier(src->user_col);
	const char *i = quote_identifier(src->item_col);
	StringInfoData sql;
	int			rc;
	bool		isnull;

	initStringInfo(&sql);
	appendStringInfo(&sql,
					 "CREATE TEMP TABLE media_reco_eval_seen ON COMMIT DROP AS"
					 " SELECT DISTINCT (s.%s)::pg_catalog.int8 AS u, (s.%s)::pg_catalog.int8 AS i"
					 " FROM %s s WHERE ",
					 u, i, source_relname(src));
	source_append_usable(&sql, src, "s");
	appendStringInfo(&sql,
					 " AND (s.%s)::pg_catalog.int8 OPERATOR(pg_catalog.=) ANY (SELECT (t.%s)::pg_catalog.int8 FROM %s t)",
					 u, u, test);
	rc = SPI_execute(sql.data, false, 0);
	if (rc != SPI_OK_UTILITY && rc != SPI_OK_SELINTO)
		elog(ERROR, "collecting seen items failed: %s", SPI_result_code_string(rc));
	if (SPI_execute("CREATE INDEX ON pg_temp.media_reco_eval_seen (u, i)", false, 0) != SPI_OK_UTILITY ||
		SPI_execute("SELECT pg_catalog.count(*) FROM pg_temp.media_reco_eval_seen GROUP BY u ORDER BY 1 DESC LIMIT 1",
					false, 0) != SPI_OK_SELECT)
		elog(ERROR, "indexing seen items failed");
	if (SPI_processed == 0)
		return 0;
	return DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
}

/* Phase 2: the popularity ranking as an int8[], long enough for the heaviest test user. */
static ArrayType *
PopularRanking(const SourceSpec *src, int k, int64 maxseen)
{
	Oid			ptypes[1] = {INT4OID};
	Datum		pargs[1] = {Int32GetDatum((int32) Min((int64) k + maxseen, PG_INT32_MAX))};
	Datum	   *pop;
	int64		npop;

	if (SPI_execute_with_args(source_popular_sql(src, false), 1, ptypes, pargs, NULL, false, 0)
		!= SPI_OK_SELECT)
		elog(ERROR, "counting popular items failed");
	npop = (int64) SPI_processed;
	pop = palloc(sizeof(Datum) * Max(npop, 1));
	for (int64 row = 0; row < npop; row++)
	{
		bool		isnull;

		pop[row] = SPI_getbinval(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, 1, &isnull);
	}
	return construct_array(pop, (int) npop, INT8OID, sizeof(int64), FLOAT8PASSBYVAL, TYPALIGN_DOUBLE);
}

/*
 * Phase 3: the scoring statement.  Per test user the relevant items (test
 * items not seen), the recommender's list ($1, k = $2) and the popular list
 * ($3 without the seen items); per side (who 0: recommender, 1: popular) the
 * averaged metrics, coverage and the user count, in the order of
 * EvalMetricNames.  The test rows are read first, in a materialized CTE:
 * when the test source is a Citus table the rest then joins the temporary
 * seen-items table to an intermediate result on the coordinator, which
 * Citus plans, instead of a distributed table in a correlated NOT EXISTS
 * ("direct joins between distributed and local tables are not supported").
 */
static char *
ScoringSql(const SourceSpec *src, const char *recommend_fn, const char *test)
{
	const char *u = quote_identifier(src->user_col);
	const char *i = quote_identifier(src->item_col);
	StringInfoData sql;

	initStringInfo(&sql);
	appendStringInfo(&sql,
					 "WITH test AS MATERIALIZED ("
					 "   SELECT DISTINCT (x.%s)::pg_catalog.int8 AS u, (x.%s)::pg_catalog.int8 AS i FROM %s x"
					 "     WHERE x.%s IS NOT NULL AND x.%s IS NOT NULL),"
					 " rel AS ("
					 "  SELECT t.u, pg_catalog.array_agg(t.i ORDER BY t.i) AS items FROM test t"
					 "  WHERE NOT EXISTS (SELECT 1 FROM pg_temp.media_reco_eval_seen s"
					 "                    WHERE s.u OPERATOR(pg_catalog.=) t.u AND s.i OPERATOR(pg_catalog.=) t.i)"
					 "  GROUP BY t.u),"
					 " scored AS ("
					 "  SELECT 0 AS who, r.items AS rel, COALESCE((SELECT pg_catalog.array_agg(m.item_id ORDER BY m.rank)"
					 "     FROM %s($1, r.u, $2) m), '{}'::pg_catalog.int8[]) AS items FROM rel r"
					 "  UNION ALL"
					 "  SELECT 1, r.items, COALESCE((SELECT pg_catalog.array_agg(p.i ORDER BY p.o) FROM"
					 "     (SELECT p.i, p.o FROM pg_catalog.unnest($3) WITH ORDINALITY p(i, o)"
					 "       WHERE NOT EXISTS (SELECT 1 FROM pg_temp.media_reco_eval_seen s"
					 "                         WHERE s.u OPERATOR(pg_catalog.=) r.u AND s.i OPERATOR(pg_catalog.=) p.i)"
					 "       ORDER BY p.o LIMIT $2) p), '{}'::pg_catalog.int8[]) FROM rel r)"
					 " SELECT who, pg_catalog.avg(media_reco.precision_at_k(items, rel, $2)),"
					 "  pg_catalog.avg(media_reco.recall_at_k(items, rel, $2)),"
					 "  pg_catalog.avg(media_reco.ndcg_at_k(items, rel, $2)),"
					 "  pg_catalog.avg(media_reco.average_precision_at_k(items, rel, $2)),"
					 "  pg_catalog.avg(media_reco.hit_at_k(items, rel, $2)),"
					 "  pg_catalog.avg(media_reco.reciprocal_rank(items, rel)),"
					 "  (SELECT pg_catalog.count(DISTINCT e) FROM scored s2, pg_catalog.unnest(s2.items) e"
					 "    WHERE s2.who OPERATOR(pg_catalog.=) s.who)::pg_catalog.float8"
					 "   OPERATOR(pg_catalog./) (SELECT CASE WHEN n OPERATOR(pg_catalog.=) 0 THEN NULL ELSE n END"
					 "    FROM (SELECT pg_catalog.count(DISTINCT c.%s) AS n FROM %s c WHERE ",
					 u, i, test, u, i, recommend_fn, i, source_relname(src));
	/* coverage: the share of the items a recommender can know, i.e. of usable rows */
	source_append_usable(&sql, src, "c");
	appendStringInfoString(&sql,
						   ") cn),"
						   "  pg_catalog.count(*)::pg_catalog.float8"
						   " FROM scored s GROUP BY who ORDER BY who");
	return sql.data;
}

static const char *const EvalMetricNames[] = {"precision@", "recall@", "ndcg@", "map@", "hit_rate@",
"mrr", "coverage", "users"};

/* Phase 4: one (metric, value) row per metric and side, from the scoring result in SPI_tuptable. */
static void
EmitMetrics(ReturnSetInfo *rsinfo, int k)
{
	for (uint64 row = 0; row < SPI_processed; row++)
	{
		HeapTuple	tup = SPI_tuptable->vals[row];
		TupleDesc	td = SPI_tuptable->tupdesc;
		bool		isnull;
		int			who = DatumGetInt32(SPI_getbinval(tup, td, 1, &isnull));

		for (int m = 0; m < lengthof(EvalMetricNames); m++)
		{
			Datum		d = SPI_getbinval(tup, td, m + 2, &isnull);
			Datum		values[2];
			bool		nulls[2] = {false, false};
			const char *name = EvalMetricNames[m];
			char	   *label;

			if (strcmp(name, "mrr") == 0 || strcmp(name, "coverage") == 0 || strcmp(name, "users") == 0)
				label = pstrdup(name);
			else
				label = psprintf("%s%d", name, k);
			values[0] = CStringGetTextDatum(who == 0 ? label : psprintf("popular_%s", label));
			values[1] = d;
			nulls[1] = isnull;
			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
		}
	}
}

/*
 * evaluate(name, test_source, k): the recommender's top-k lists for every
 * test user with at least one test item not already in the training source
 * (those are the relevant items), scored with the ranking metrics, and the
 * same for the most popular items the user has not seen.
 */
/*
 * The shared body of evaluate and evaluate_als: `name`'s lists come from
 * recommend_fn(name, user, k); src is its source (validated by the caller).
 */
static void
EvaluateLists(FunctionCallInfo fcinfo, const char *name, const SourceSpec *src,
			  const char *recommend_fn, const char *what)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Oid			test_relid = PG_GETARG_OID(1);
	int			k = PG_GETARG_INT32(2);
	char	   *test;
	int64		maxseen;
	Oid			types[3] = {TEXTOID, INT4OID, INT8ARRAYOID};
	Datum		args[3];
	int			rc;

	test = source_lock_relation(test_relid);
	RequireColumn(test_relid, src->user_col, "user");
	RequireColumn(test_relid, src->item_col, "item");

	maxseen = CollectSeen(src, test);
	args[2] = PointerGetDatum(PopularRanking(src, k, maxseen));
	args[0] = CStringGetTextDatum(name);
	args[1] = Int32GetDatum(k);
	rc = SPI_execute_with_args(ScoringSql(src, recommend_fn, test), 3, types, args, NULL, false, 0);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "scoring failed: %s", SPI_result_code_string(rc));
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("no test user has a test item that is not already in the training source"),
				 errhint("Evaluate on interactions held out of the %s's source, e.g. from split_interactions.", what)));
	EmitMetrics(rsinfo, k);
	if (SPI_execute("DROP TABLE pg_temp.media_reco_eval_seen", false, 0) != SPI_OK_UTILITY)
		elog(ERROR, "dropping the seen-items table failed");
}

static void
EvaluateArgs(FunctionCallInfo fcinfo, const char *first)
{
	check_not_null(fcinfo, 0, first);
	check_not_null(fcinfo, 1, "test_source");
	check_not_null(fcinfo, 2, "k");
	check_k(PG_GETARG_INT32(2), "k");
	InitMaterializedSRF(fcinfo, 0);
}

Datum
evaluate_recommender(PG_FUNCTION_ARGS)
{
	MemoryContext callcxt = CurrentMemoryContext;
	Recommender r;

	EvaluateArgs(fcinfo, "name");
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	recommender_fetch(arg_text_or_null(fcinfo, 0), false, callcxt, &r);
	recommender_require_refreshed(&r);
	recommender_require_source(&r);
	source_validate(&r.src);
	EvaluateLists(fcinfo, r.name, &r.src, "media_reco.recommend", "recommender");
	SPI_finish();
	return (Datum) 0;
}

/*
 * evaluate_als(model_name, test_source, k): evaluate's protocol and
 * metrics over recommend_als's lists (the stored user factors; users absent
 * from training recalculated from their history).
 */
Datum
evaluate_als(PG_FUNCTION_ARGS)
{
	MemoryContext callcxt = CurrentMemoryContext;
	SourceSpec	src;
	char	   *name;

	EvaluateArgs(fcinfo, "model_name");
	name = arg_text_or_null(fcinfo, 0);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	als_model_source(name, callcxt, &src);
	source_validate(&src);
	EvaluateLists(fcinfo, name, &src, "media_reco.recommend_als", "model");
	SPI_finish();
	return (Datum) 0;
}
