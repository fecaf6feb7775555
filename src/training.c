/*
 * training.c
 *	  What the supervised models' SQL glue shares: the growing matrix of
 *	  training rows (the forest_fit aggregate's state, and what
 *	  model_read_training fills), the label check, reading the training rows
 *	  of a relation by column names (the label and feature columns resolved
 *	  and checked, values encoded by inputs.c) and storing the trained model
 *	  in the registry.  The canonical row order and class sets are plain C,
 *	  in training_core.c.
 */
#include "postgres.h"

#include <math.h>

#include "access/relation.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"

#include "inputs.h"
#include "models.h"
#include "source.h"
#include "training.h"
#include "util.h"

/* ---------------------------------------------------------------------------
 * Training rows
 * ------------------------------------------------------------------------- */

void
train_rows_init(TrainRows *tr, int32 nf, Size mem_limit)
{
	tr->nf = nf;
	tr->n = 0;
	tr->cap = 0;
	tr->x = NULL;
	tr->y = NULL;
	tr->mem_limit = mem_limit;
}

/* room for `more` rows, doubling; the matrix counts against the memory limit */
void
train_rows_reserve(TrainRows *tr, int64 more)
{
	int64		need = tr->n + more;
	int64		cap;
	Size		bytes;

	if (need <= tr->cap)
		return;
	cap = Max(tr->cap * 2, 1024);
	while (cap < need)
		cap *= 2;
	if (need > PG_INT32_MAX - 1)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("too many training rows (the limit is %d)", PG_INT32_MAX - 1)));
	if ((double) need * (tr->nf + 1) * sizeof(double) > (double) tr->mem_limit)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("the training rows do not fit in maintenance_work_mem (%zu MB)",
						tr->mem_limit >> 20),
				 errdetail("%lld rows of %d features are held as float8.", (long long) need, tr->nf),
				 errhint("Raise maintenance_work_mem, or train on a sample of the rows.")));
	if ((double) cap * (tr->nf + 1) * sizeof(double) > (double) tr->mem_limit)
		cap = need;
	bytes = (Size) cap * tr->nf * sizeof(double);
	if (tr->x == NULL)
	{
		tr->x = palloc_extended(Max(bytes, 1), MCXT_ALLOC_HUGE);
		tr->y = palloc_extended(sizeof(double) * cap, MCXT_ALLOC_HUGE);
	}
	else
	{
		tr->x = repalloc_huge(tr->x, Max(bytes, 1));
		tr->y = repalloc_huge(tr->y, sizeof(double) * cap);
	}
	tr->cap = cap;
}

void
check_label(double v)
{
	if (!isfinite(v))
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("labels must be finite, got %g", v),
				 errhint("Rows with a NULL label are skipped.")));
	/* leaf means sum weighted labels: keep those sums finite */
	if (fabs(v) > 1e300)
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("labels must be at most 1e300 in magnitude, got %g", v)));
}

/* ---------------------------------------------------------------------------
 * Reading the rows of a relation
 * ------------------------------------------------------------------------- */

/* resolve the label and feature columns of relid into inputs */
static void
ResolveColumns(Oid relid, const char *label, ArrayType *cols, AttrNumber *label_att,
			   Oid *label_type, ModelInputs *mi, List **atts)
{
	Relation	rel = relation_open(relid, AccessShareLock);
	TupleDesc	td = RelationGetDescr(rel);
	InputKind	kind;
	int			n = 0;
	ModelInput *in = palloc0(sizeof(ModelInput) * Max(td->natts, 1));

	*label_att = InvalidAttrNumber;
	for (int a = 0; a < td->natts; a++)
	{
		Form_pg_attribute att = TupleDescAttr(td, a);

		if (!att->attisdropped && strcmp(NameStr(att->attname), label) == 0)
		{
			*label_att = a + 1;
			*label_type = att->atttypid;
		}
	}
	if (*label_att == InvalidAttrNumber)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("label column \"%s\" does not exist in relation \"%s\"",
						label, RelationGetRelationName(rel))));
	if (!input_kind_for_type(*label_type, &kind) || (kind != INPUT_NUMBER && kind != INPUT_BOOLEAN))
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("label column \"%s\" has type %s", label, format_type_be(*label_type)),
				 errdetail("Labels must be numbers (class ids or regression targets) or booleans."),
				 errhint("Map text labels to numbers first, e.g. CASE plan WHEN 'basic' THEN 0 ... END in a view.")));

	*atts = NIL;
	if (cols == NULL)
	{
		for (int a = 0; a < td->natts; a++)
		{
			Form_pg_attribute att = TupleDescAttr(td, a);

			if (att->attisdropped || a + 1 == *label_att ||
				!input_kind_for_type(att->atttypid, &kind))
				continue;
			in[n].column = pstrdup(NameStr(att->attname));
			in[n].kind = kind;
			in[n].width = kind == INPUT_ARRAY ? 0 : 1;
			*atts = lappend_int(*atts, a + 1);
			n++;
		}
		if (n == 0)
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("relation \"%s\" has no column usable as a feature besides the label",
							RelationGetRelationName(rel)),
					 errdetail("Features are numbers, booleans, text or enum categories, and numeric arrays.")));
	}
	else
	{
		Datum	   *el;
		bool	   *nl;
		int			ne;

		if (ARR_NDIM(cols) > 1)
			ereport(ERROR,
					(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
					 errmsg("feature_cols must be a one-dimensional array")));
		deconstruct_array(cols, NAMEOID, NAMEDATALEN, false, TYPALIGN_CHAR, &el, &nl, &ne);
		if (ne == 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("feature_cols must not be empty"),
					 errhint("Pass NULL to use every other column.")));
		in = repalloc(in, sizeof(ModelInput) * Max(ne, 1));
		for (int i = 0; i < ne; i++)
		{
			const char *c;
			AttrNumber	found = InvalidAttrNumber;
			Oid			typ = InvalidOid;

			if (nl[i])
				ereport(ERROR,
						(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
						 errmsg("feature_cols must not contain NULL")));
			c = NameStr(*DatumGetName(el[i]));
			for (int a = 0; a < td->natts; a++)
			{
				Form_pg_attribute att = TupleDescAttr(td, a);

				if (!att->attisdropped && strcmp(NameStr(att->attname), c) == 0)
				{
					found = a + 1;
					typ = att->atttypid;
				}
			}
			if (found == InvalidAttrNumber)
				ereport(ERROR,
						(errcode(ERRCODE_UNDEFINED_COLUMN),
						 errmsg("feature column \"%s\" does not exist in relation \"%s\"",
								c, RelationGetRelationName(rel))));
			if (found == *label_att)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("column \"%s\" is the label and cannot also be a feature", c)));
			for (int j = 0; j < n; j++)
				if (strcmp(in[j].column, c) == 0)
					ereport(ERROR,
							(errcode(ERRCODE_DUPLICATE_COLUMN),
							 errmsg("feature column \"%s\" is listed twice", c)));
			if (!input_kind_for_type(typ, &kind))
				ereport(ERROR,
						(errcode(ERRCODE_DATATYPE_MISMATCH),
						 errmsg("feature column \"%s\" has type %s, which is not a supported feature type",
								c, format_type_be(typ)),
						 errdetail("Features are numbers, booleans, text or enum categories, and numeric arrays.")));
			in[n].column = pstrdup(c);
			in[n].kind = kind;
			in[n].width = kind == INPUT_ARRAY ? 0 : 1;
			*atts = lappend_int(*atts, found);
			n++;
		}
	}
	mi->n = n;
	mi->in = in;
	relation_close(rel, AccessShareLock);
}

/* the width of each array input: the length of its first non-NULL value */
static void
ArrayWidths(ModelInputs *mi, const char *relname)
{
	for (int32 i = 0; i < mi->n; i++)
	{
		ModelInput *in = &mi->in[i];
		char	   *sql;
		bool		isnull;
		Datum		d;

		if (in->kind != INPUT_ARRAY)
			continue;
		sql = psprintf("SELECT pg_catalog.cardinality(%s) FROM %s WHERE %s IS NOT NULL LIMIT 1",
					   quote_identifier(in->column), relname, quote_identifier(in->column));
		if (SPI_execute(sql, true, 1) != SPI_OK_SELECT)
			elog(ERROR, "array length query failed");
		if (SPI_processed == 0)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_EXCEPTION),
					 errmsg("array column \"%s\" holds no non-NULL value", in->column),
					 errhint("Leave it out of feature_cols.")));
		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
		in->width = isnull ? 0 : DatumGetInt32(d);
		if (in->width < 1)
			ereport(ERROR,
					(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
					 errmsg("array column \"%s\" holds empty arrays", in->column)));
	}
	inputs_layout(mi);
}

/*
 * Read the training rows of a relation by column names (SPI connected):
 * labels (NULL skipped) and features encoded by `td->mi`, in td->cxt.
 */
void
model_read_training(Oid relid, const char *label, ArrayType *cols, TrainingData *td)
{
	AttrNumber	label_att;
	List	   *atts;
	StringInfoData sql;
	Portal		portal;
	MemoryContext old;

	td->label = pstrdup(label);
	td->relname = source_lock_relation(relid);
	td->label_type = InvalidOid;
	ResolveColumns(relid, label, cols, &label_att, &td->label_type, &td->mi, &atts);
	ArrayWidths(&td->mi, td->relname);

	initStringInfo(&sql);
	appendStringInfo(&sql, "SELECT %s", quote_identifier(label));
	for (int32 i = 0; i < td->mi.n; i++)
		appendStringInfo(&sql, ", %s", quote_identifier(td->mi.in[i].column));
	appendStringInfo(&sql, " FROM %s", td->relname);

	old = MemoryContextSwitchTo(td->cxt);
	train_rows_init(&td->rows, td->mi.n_features, work_memory_limit());
	MemoryContextSwitchTo(old);

	portal = SPI_cursor_open_with_args(NULL, sql.data, 0, NULL, NULL, NULL, true, 0);
	for (;;)
	{
		SPI_cursor_fetch(portal, true, 10000);
		if (SPI_processed == 0)
			break;
		old = MemoryContextSwitchTo(td->cxt);
		train_rows_reserve(&td->rows, (int64) SPI_processed);
		for (uint64 r = 0; r < SPI_processed; r++)
		{
			HeapTuple	tup = SPI_tuptable->vals[r];
			TupleDesc	tdesc = SPI_tuptable->tupdesc;
			bool		isnull;
			Datum		d = SPI_getbinval(tup, tdesc, 1, &isnull);
			double		y;
			double	   *xrow = td->rows.x + td->rows.n * td->rows.nf;

			if (isnull)
				continue;		/* rows without a label are skipped */
			if (getBaseType(td->label_type) == BOOLOID)
				y = DatumGetBool(d) ? 1.0 : 0.0;
			else
			{
				ModelInput	lab = {.column = (char *) label, .kind = INPUT_NUMBER, .width = 1};

				input_encode(&lab, d, false, td->label_type, &y, false);
			}
			check_label(y);
			for (int32 i = 0; i < td->mi.n; i++)
			{
				Datum		v = SPI_getbinval(tup, tdesc, i + 2, &isnull);

				input_encode(&td->mi.in[i], v, isnull, SPI_gettypeid(tdesc, i + 2),
							 xrow + td->mi.in[i].offset, true);
			}
			td->rows.y[td->rows.n++] = y;
		}
		MemoryContextSwitchTo(old);
		SPI_freetuptable(SPI_tuptable);
		CHECK_FOR_INTERRUPTS();
	}
	SPI_cursor_close(portal);
	old = MemoryContextSwitchTo(td->cxt);
	inputs_finish_training(&td->mi, td->rows.x, td->rows.n);
	MemoryContextSwitchTo(old);
}

/* ---------------------------------------------------------------------------
 * Storing the trained model
 * ------------------------------------------------------------------------- */

void
training_store_model(const char *name, const char *algorithm, bool regression,
					 const TrainingData *td, int32 n_classes, const double *classes,
					 Jsonb *options, const char *metrics_json, bytea *blob)
{
	LoadedModel shape;
	Jsonb	   *metrics;

	memset(&shape, 0, sizeof(shape));
	shape.n_features = td->mi.n_features;
	shape.n_classes = n_classes;
	shape.classes = classes;
	metrics = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(metrics_json)));
	model_store(name, algorithm, regression, &shape, inputs_feature_names(&td->mi),
				inputs_to_jsonb(&td->mi), options, metrics, td->label, td->relname, blob);
}
