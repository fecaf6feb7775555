/*
 * core.c
 *	  The plain-C support every core shares: error filling, overflow-checked
 *	  arrays, bounded readers and growable buffers.  No PostgreSQL calls.
 */
#include "core.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void
FormatInto(char *dst, const char *fmt, va_list ap)
{
	vsnprintf(dst, CORE_MSG_LEN, fmt, ap);
}

CoreStatus
core_error(CoreError *err, CoreStatus status, const char *fmt,...)
{
	va_list		ap;

	if (err == NULL)
		return status;
	err->status = status;
	va_start(ap, fmt);
	FormatInto(err->message, fmt, ap);
	va_end(ap);
	err->detail[0] = '\0';
	err->hint[0] = '\0';
	return status;
}

CoreStatus
core_error_detail(CoreError *err, const char *fmt,...)
{
	va_list		ap;

	if (err == NULL)
		return CORE_OK;
	va_start(ap, fmt);
	FormatInto(err->detail, fmt, ap);
	va_end(ap);
	return err->status;
}

CoreStatus
core_error_hint(CoreError *err, const char *fmt,...)
{
	va_list		ap;

	if (err == NULL)
		return CORE_OK;
	va_start(ap, fmt);
	FormatInto(err->hint, fmt, ap);
	va_end(ap);
	return err->status;
}

void *
core_array(const CoreAlloc *a, size_t count, size_t elem, bool zero, CoreError *err)
{
	size_t		bytes;
	void	   *p;

	if (count != 0 && elem > CORE_MAX_ALLOC / count)
	{
		core_error(err, CORE_LIMIT, "requested array of %zu elements of %zu bytes is too large",
				   count, elem);
		return NULL;
	}
	bytes = count * elem;
	if (bytes == 0)
		bytes = 1;
	p = a->alloc(a->ctx, bytes);
	if (p == NULL)
	{
		core_error(err, CORE_NOMEM, "out of memory");
		core_error_detail(err, "Failed on request of size %zu.", bytes);
		return NULL;
	}
	if (zero)
		memset(p, 0, bytes);
	return p;
}

void
core_release(const CoreAlloc *a, void *p)
{
	if (p != NULL && a->free != NULL)
		a->free(a->ctx, p);
}

static void *
MallocAlloc(void *ctx, size_t size)
{
	(void) ctx;
	return malloc(size);
}

static void
MallocFree(void *ctx, void *p)
{
	(void) ctx;
	free(p);
}

const CoreAlloc core_malloc_alloc = {MallocAlloc, MallocFree, NULL};

const CoreInterrupts core_no_interrupts = {NULL, NULL};

bool
core_read(CoreReader *r, void *dst, size_t n)
{
	if (n > r->left)
		return false;
	memcpy(dst, r->p, n);
	r->p += n;
	r->left -= n;
	return true;
}

const char *
core_take(CoreReader *r, size_t n)
{
	const char *p = r->p;

	if (n > r->left)
		return NULL;
	r->p += n;
	r->left -= n;
	return p;
}

void
core_buf_init(CoreBuf *b, const CoreAlloc *a, size_t initial)
{
	b->alloc = a;
	b->len = 0;
	b->cap = initial > 0 ? initial : 64;
	b->failed = false;
	b->data = a->alloc(a->ctx, b->cap);
	if (b->data == NULL)
	{
		b->cap = 0;
		b->failed = true;
	}
}

void
core_buf_append(CoreBuf *b, const void *data, size_t n)
{
	if (b->failed)
		return;
	if (n > CORE_MAX_ALLOC - b->len)
	{
		b->failed = true;
		return;
	}
	if (b->len + n > b->cap)
	{
		size_t		cap = b->cap;
		char	   *bigger;

		while (cap < b->len + n)
			cap = cap > CORE_MAX_ALLOC / 2 ? CORE_MAX_ALLOC : cap * 2;
		bigger = b->alloc->alloc(b->alloc->ctx, cap);
		if (bigger == NULL)
		{
			b->failed = true;
			return;
		}
		memcpy(bigger, b->data, b->len);
		core_release(b->alloc, b->data);
		b->data = bigger;
		b->cap = cap;
	}
	memcpy(b->data + b->len, data, n);
	b->len += n;
}

CoreStatus
core_buf_status(const CoreBuf *b, CoreError *err)
{
	if (!b->failed)
		return CORE_OK;
	if (b->len > CORE_MAX_ALLOC / 2)
		return core_error(err, CORE_LIMIT, "serialised value is too large (%zu bytes)", b->len);
	return core_error(err, CORE_NOMEM, "out of memory while serialising (%zu bytes written)", b->len);
}
