/* Shared by the C peers: load the frames of a workload pcap (written by
 * bench/workloads.py), hash them the same way, time repetitions, print JSON lines.
 *
 * Output, one JSON object per line:
 *   {"peer":..., "impl":..., "op":..., "workload":..., "size":..., "unit":"pkt",
 *    "ns_per_pkt":median, "min":..., "max":..., "iqr":..., "reps":R, "pkts_per_rep":N,
 *    "fnv":"<hash of the frames loaded>", "notes":"what was and was not measured"}
 */
#ifndef OFFLOAD_BENCH_COMMON_H
#define OFFLOAD_BENCH_COMMON_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct frames {
	uint32_t n;
	uint8_t **data;   /* each frame copied to its own 64-byte aligned buffer */
	uint32_t *len;
	uint64_t total;
	uint64_t fnv;
};

static inline uint64_t fnv1a64(uint64_t h, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 0x100000001B3ULL;
	return h;
}

static int load_pcap(const char *path, struct frames *fr)
{
	FILE *f = fopen(path, "rb");
	if (!f) { perror(path); return -1; }
	uint8_t gh[24];
	if (fread(gh, 1, 24, f) != 24 || *(uint32_t *)gh != 0xA1B2C3D4u) {
		fprintf(stderr, "%s: not a little-endian classic pcap\n", path);
		fclose(f);
		return -1;
	}
	uint32_t cap = 64;
	fr->n = 0;
	fr->total = 0;
	fr->fnv = 0xCBF29CE484222325ULL;
	fr->data = malloc(cap * sizeof(*fr->data));
	fr->len = malloc(cap * sizeof(*fr->len));
	uint8_t rh[16];
	while (fread(rh, 1, 16, f) == 16) {
		uint32_t incl = *(uint32_t *)(rh + 8);
		if (incl > (1u << 20)) { fprintf(stderr, "%s: record too large\n", path); break; }
		if (fr->n == cap) {
			cap *= 2;
			fr->data = realloc(fr->data, cap * sizeof(*fr->data));
			fr->len = realloc(fr->len, cap * sizeof(*fr->len));
		}
		uint8_t *b = aligned_alloc(64, (incl + 63) / 64 * 64 + 64);
		if (fread(b, 1, incl, f) != incl) { fprintf(stderr, "%s: truncated\n", path); free(b); break; }
		fr->data[fr->n] = b;
		fr->len[fr->n] = incl;
		fr->total += incl;
		fr->fnv = fnv1a64(fr->fnv, b, incl);
		fr->n++;
	}
	fclose(f);
	return fr->n ? 0 : -1;
}

static inline uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

struct result {
	const char *peer, *impl, *op, *workload, *unit, *notes;
	int size;
	uint64_t pkts_per_rep;  /* packets (in the op's unit) per repetition */
	uint64_t fnv;
	int reps;
	double ns[256];         /* ns per unit, one per repetition */
	double extra;           /* op-specific: output frames per input, etc. */
};

static void emit(struct result *r)
{
	double s[256];
	int n = r->reps;
	memcpy(s, r->ns, n * sizeof(double));
	qsort(s, n, sizeof(double), cmp_double);
	double med = n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
	double q1 = s[n / 4], q3 = s[(3 * n) / 4 < n ? (3 * n) / 4 : n - 1];
	printf("{\"peer\":\"%s\",\"impl\":\"%s\",\"op\":\"%s\",\"workload\":\"%s\",\"size\":%d,"
	       "\"unit\":\"%s\",\"ns_per_pkt\":%.3f,\"min\":%.3f,\"max\":%.3f,\"iqr\":%.3f,"
	       "\"reps\":%d,\"pkts_per_rep\":%llu,\"fnv\":\"%016llx\",\"extra\":%.9g,\"notes\":\"%s\"}\n",
	       r->peer, r->impl, r->op, r->workload, r->size, r->unit ? r->unit : "pkt", med, s[0], s[n - 1],
	       q3 - q1, n, (unsigned long long)r->pkts_per_rep, (unsigned long long)r->fnv, r->extra, r->notes);
	fflush(stdout);
}

/* Output frames of the last pass of a "full" form, kept so that a test can check them
 * (OFFLOAD_BENCH_DUMP=<prefix> writes <prefix>.<impl>.pcap): proof the work was done. */
#define MAX_REC 16384
static uint64_t rec_off[MAX_REC];
static uint32_t rec_len[MAX_REC];
static uint32_t rec_n;

static inline void record(uint64_t off, uint32_t len)
{
	if (rec_n < MAX_REC) {
		rec_off[rec_n] = off;
		rec_len[rec_n] = len;
		rec_n++;
	}
}

static void dump_records(const uint8_t *arena, const char *impl)
{
	const char *prefix = getenv("OFFLOAD_BENCH_DUMP");
	if (!prefix || !rec_n)
		return;
	char path[4096];
	snprintf(path, sizeof(path), "%s.%s.pcap", prefix, impl);
	FILE *f = fopen(path, "wb");
	if (!f) { perror(path); return; }
	uint32_t gh[6] = { 0xA1B2C3D4u, 2 | (4u << 16), 0, 0, 262144, 1 };
	fwrite(gh, 4, 6, f);
	for (uint32_t i = 0; i < rec_n; i++) {
		uint32_t rh[4] = { 1700000000u, i, rec_len[i], rec_len[i] };
		fwrite(rh, 4, 4, f);
		fwrite(arena + rec_off[i], 1, rec_len[i], f);
	}
	fclose(f);
}

/* Repetitions: REPS timed runs, each long enough (>= min_ns) to dwarf the clock. */
static int g_reps = 15;
static uint64_t g_min_ns = 2000000;  /* 2 ms per repetition */

static void parse_env(void)
{
	const char *r = getenv("OFFLOAD_BENCH_REPS");
	const char *m = getenv("OFFLOAD_BENCH_MIN_NS");
	if (r) g_reps = atoi(r) < 1 ? 1 : atoi(r) > 256 ? 256 : atoi(r);
	if (m) g_min_ns = strtoull(m, NULL, 10);
}

/* One's-complement sum, the careful-C way: 32-bit loads into a 64-bit accumulator
 * (the compiler vectorises this loop), head and tail bytes handled separately.
 * Returns the folded 16-bit sum of the span read as big-endian words. */
static inline uint16_t c_sum(const uint8_t *p, size_t n)
{
	uint64_t acc = 0;
	size_t i = 0;
	/* little-endian lanes: a byte at an even offset is the low byte of its lane */
	for (; i + 4 <= n; i += 4) {
		uint32_t w;
		memcpy(&w, p + i, 4);
		acc += w;
	}
	for (; i < n; i++)
		acc += (uint64_t)p[i] << ((i & 1) * 8);
	acc = (acc & 0xFFFFFFFFu) + (acc >> 32);
	acc = (acc & 0xFFFFFFFFu) + (acc >> 32);
	acc = (acc & 0xFFFF) + (acc >> 16);
	acc = (acc & 0xFFFF) + (acc >> 16);
	acc = (acc & 0xFFFF) + (acc >> 16);
	return (uint16_t)(((acc & 0xFF) << 8) | (acc >> 8));  /* to big-endian meaning */
}

static inline uint16_t fold_add(uint32_t a, uint32_t b)
{
	uint32_t s = a + b;
	s = (s & 0xFFFF) + (s >> 16);
	return (uint16_t)((s & 0xFFFF) + (s >> 16));
}

#endif
