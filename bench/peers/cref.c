/* "A careful C" reference: what a C programmer writes by hand for the same work,
 * compiled with -O3 -march=native, no library.  Also the memcpy reference row.
 *
 *   cref <op> <workload-name> <size> <pcap> [mss]
 *
 * ops: raw, verify4, verify6, fill4, fill6, gso4, gso6, uso4, gro4, parse
 * Every op also emits a "memcpy" row: memcpy of the same bytes (all frames of the
 * workload into one destination arena), measured in the same process.
 * GSO here is two-pass: copy headers+payload into flat frames, then sum them
 * (checksums written); GRO and parse get the memcpy row only.
 */
#include "common.h"

static struct frames F;
static uint8_t *arena;      /* flat output: segments / copies */
static size_t arena_size;
static volatile uint64_t sink;

static inline uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static inline void wr16(uint8_t *p, uint16_t v) { p[0] = v >> 8; p[1] = v & 0xFF; }
static inline uint32_t rd32(const uint8_t *p) { return (uint32_t)rd16(p) << 16 | rd16(p + 2); }
static inline void wr32(uint8_t *p, uint32_t v) { wr16(p, v >> 16); wr16(p + 2, v & 0xFFFF); }

static uint16_t pseudo4(const uint8_t *ip, uint8_t proto, uint32_t l4len)
{
	uint32_t s = rd16(ip + 12) + rd16(ip + 14) + rd16(ip + 16) + rd16(ip + 18) + proto + l4len;
	return fold_add(s, 0);
}

static uint16_t pseudo6(const uint8_t *ip, uint8_t proto, uint32_t l4len)
{
	uint32_t s = proto + (l4len >> 16) + (l4len & 0xFFFF);
	for (int k = 8; k < 40; k += 2)
		s += rd16(ip + k);
	return fold_add(s, 0);
}

/* Returns 1 when the frame's IP (v4) and TCP/UDP checksums are valid. */
static int verify(uint8_t *f, uint32_t len, int v6)
{
	if (!v6) {
		uint8_t *ip = f + 14;
		uint32_t ihl = (ip[0] & 15) * 4;
		if (c_sum(ip, ihl) != 0xFFFF) return 0;
		uint32_t l4len = rd16(ip + 2) - ihl;
		if (14 + ihl + l4len > len) return 0;
		return fold_add(pseudo4(ip, ip[9], l4len), c_sum(ip + ihl, l4len)) == 0xFFFF;
	}
	uint8_t *ip = f + 14;
	uint32_t l4len = rd16(ip + 4);
	if (54 + l4len > len) return 0;
	return fold_add(pseudo6(ip, ip[6], l4len), c_sum(ip + 40, l4len)) == 0xFFFF;
}

static void fill(uint8_t *f, int v6)
{
	uint8_t *ip = f + 14;
	if (!v6) {
		uint32_t ihl = (ip[0] & 15) * 4;
		wr16(ip + 10, 0);
		wr16(ip + 10, ~c_sum(ip, ihl));
		uint32_t l4len = rd16(ip + 2) - ihl;
		uint8_t *l4 = ip + ihl;
		wr16(l4 + 16, 0);
		wr16(l4 + 16, ~fold_add(pseudo4(ip, 6, l4len), c_sum(l4, l4len)));
		return;
	}
	uint32_t l4len = rd16(ip + 4);
	uint8_t *l4 = ip + 40;
	wr16(l4 + 16, 0);
	wr16(l4 + 16, ~fold_add(pseudo6(ip, 6, l4len), c_sum(l4, l4len)));
}

/* Two-pass TCP segmentation of one CHECKSUM_PARTIAL super-frame into flat frames at
 * `out`: copy headers + payload, patch lengths/seq/id/flags, then sum (IPv4 header
 * checksum and full TCP checksum written). Returns bytes written. */
static size_t gso_tcp(const uint8_t *f, uint32_t len, int v6, uint32_t mss, uint8_t *out, int *nseg)
{
	const uint8_t *ip = f + 14;
	uint32_t l3 = v6 ? 40 : (ip[0] & 15) * 4;
	const uint8_t *tcp = ip + l3;
	uint32_t thl = (tcp[12] >> 4) * 4;
	uint32_t hdr = 14 + l3 + thl;
	uint32_t pay = len - hdr;
	uint32_t seq = rd32(tcp + 4);
	uint16_t id = v6 ? 0 : rd16(ip + 4);
	uint8_t flags = tcp[13];
	size_t w = 0;
	int k = 0;
	for (uint32_t p = 0; p < pay; p += mss, k++) {
		uint32_t n = pay - p < mss ? pay - p : mss;
		uint8_t *o = out + w;
		memcpy(o, f, hdr);
		memcpy(o + hdr, f + hdr + p, n);
		uint8_t *oip = o + 14, *otcp = oip + l3;
		uint32_t l4len = thl + n;
		wr32(otcp + 4, seq + p);
		uint8_t fl = flags;
		if (p + n < pay) fl &= ~(0x01 | 0x08);  /* FIN, PSH only on the last */
		if (p) fl &= ~0x80;                      /* CWR only on the first */
		otcp[13] = fl;
		wr16(otcp + 16, 0);
		if (!v6) {
			wr16(oip + 2, l3 + l4len);
			wr16(oip + 4, id + k);
			wr16(oip + 10, 0);
			wr16(oip + 10, ~c_sum(oip, l3));
			wr16(otcp + 16, ~fold_add(pseudo4(oip, 6, l4len), c_sum(otcp, l4len)));
		} else {
			wr16(oip + 4, l4len);
			wr16(otcp + 16, ~fold_add(pseudo6(oip, 6, l4len), c_sum(otcp, l4len)));
		}
		record(o - arena, hdr + n);
		w += (hdr + n + 63) & ~63u;
	}
	*nseg = k;
	return w;
}

/* USO: UDP/IPv4 datagrams of `mss` payload bytes each, checksums written. */
static size_t uso4(const uint8_t *f, uint32_t len, uint32_t mss, uint8_t *out, int *nseg)
{
	const uint8_t *ip = f + 14;
	uint32_t l3 = (ip[0] & 15) * 4, hdr = 14 + l3 + 8, pay = len - hdr;
	uint16_t id = rd16(ip + 4);
	size_t w = 0;
	int k = 0;
	for (uint32_t p = 0; p < pay; p += mss, k++) {
		uint32_t n = pay - p < mss ? pay - p : mss;
		uint8_t *o = out + w, *oip = o + 14, *udp = oip + l3;
		memcpy(o, f, hdr);
		memcpy(o + hdr, f + hdr + p, n);
		wr16(oip + 2, l3 + 8 + n);
		wr16(oip + 4, id + k);
		wr16(oip + 10, 0);
		wr16(oip + 10, ~c_sum(oip, l3));
		wr16(udp + 4, 8 + n);
		wr16(udp + 6, 0);
		uint16_t c = ~fold_add(pseudo4(oip, 17, 8 + n), c_sum(udp, 8 + n));
		wr16(udp + 6, c ? c : 0xFFFF);
		record(o - arena, hdr + n);
		w += (hdr + n + 63) & ~63u;
	}
	*nseg = k;
	return w;
}

typedef void (*body_fn)(int *units);

static const char *g_op;
static uint32_t g_mss;

static void body_memcpy(int *units)
{
	size_t w = 0;
	for (uint32_t i = 0; i < F.n; i++) {
		memcpy(arena + w, F.data[i], F.len[i]);
		w += (F.len[i] + 63) & ~63u;
	}
	sink += arena[0];
	*units = F.n;
}

static void body_raw(int *units)
{
	uint64_t s = 0;
	for (uint32_t i = 0; i < F.n; i++)
		s += c_sum(F.data[i], F.len[i]);
	sink += s;
	*units = F.n;
}

static void body_verify(int *units)
{
	int v6 = g_op[6] == '6', ok = 0;
	for (uint32_t i = 0; i < F.n; i++)
		ok += verify(F.data[i], F.len[i], v6);
	if (ok != (int)F.n) { fprintf(stderr, "cref: %d of %u frames failed verification\n", F.n - ok, F.n); exit(1); }
	*units = F.n;
}

static void body_fill(int *units)
{
	int v6 = g_op[4] == '6';
	for (uint32_t i = 0; i < F.n; i++)
		fill(F.data[i], v6);
	*units = F.n;
}

/* skb_checksum_help: sum from csum_start (34) to the end, field included, store ~sum at +16 */
static void body_complete(int *units)
{
	for (uint32_t i = 0; i < F.n; i++) {
		uint8_t *f = F.data[i];
		uint16_t v = ~c_sum(f + 34, F.len[i] - 34);
		wr16(f + 34 + 16, v ? v : 0xFFFF);
	}
	*units = F.n;
}

static int g_segs;

static void body_gso(int *units)
{
	size_t w = 0;
	rec_n = 0;
	int total = 0;
	for (uint32_t i = 0; i < F.n; i++) {
		int k;
		if (!strcmp(g_op, "uso4"))
			w += uso4(F.data[i], F.len[i], g_mss, arena + w, &k);
		else
			w += gso_tcp(F.data[i], F.len[i], !strcmp(g_op, "gso6"), g_mss, arena + w, &k);
		total += k;
	}
	g_segs = total;
	sink += arena[0];
	*units = F.n;
}

static void run(struct result *r, body_fn fn)
{
	int units = 0;
	fn(&units);  /* warm-up, and size the loop */
	uint64_t t0 = now_ns();
	fn(&units);
	uint64_t one = now_ns() - t0;
	uint64_t iters = one ? g_min_ns / one + 1 : 1000;
	for (int rep = 0; rep < r->reps; rep++) {
		t0 = now_ns();
		for (uint64_t it = 0; it < iters; it++)
			fn(&units);
		r->ns[rep] = (double)(now_ns() - t0) / (double)(iters * units);
	}
	r->pkts_per_rep = iters * units;
	emit(r);
}

int main(int argc, char **argv)
{
	if (argc < 5) {
		fprintf(stderr, "usage: cref <op> <workload> <size> <pcap> [mss]\n");
		return 2;
	}
	parse_env();
	g_op = argv[1];
	g_mss = argc > 5 ? atoi(argv[5]) : 1448;
	if (load_pcap(argv[4], &F)) return 1;
	arena_size = F.total * 2 + F.n * 128 + (1 << 20);
	arena = aligned_alloc(64, (arena_size + 63) & ~(size_t)63);
	memset(arena, 0, arena_size);

	struct result r = { .peer = "c", .workload = argv[2], .op = g_op, .size = atoi(argv[3]),
			    .fnv = F.fnv, .reps = g_reps, .unit = "pkt" };
	r.impl = "memcpy";
	r.notes = "memcpy of the same frame bytes into one arena (reference)";
	run(&r, body_memcpy);

	r.impl = "careful-c";
	if (!strcmp(g_op, "raw")) {
		r.notes = "one's-complement sum of each span, u32 words into u64 (auto-vectorised)";
		run(&r, body_raw);
	} else if (!strncmp(g_op, "verify", 6)) {
		r.notes = "IPv4 header + pseudo-header + L4 sum per frame, verdict checked";
		run(&r, body_verify);
	} else if (!strncmp(g_op, "fill", 4)) {
		r.notes = "IPv4 header + TCP checksum computed and written in place";
		run(&r, body_fill);
	} else if (!strcmp(g_op, "complete4")) {
		r.notes = "sum from csum_start to the end of the frame, inverted sum written at csum_start+csum_offset";
		run(&r, body_complete);
	} else if (!strcmp(g_op, "gso4") || !strcmp(g_op, "gso6") || !strcmp(g_op, "uso4")) {
		int units;
		r.notes = "two-pass: memcpy headers+payload to flat segments, then sum; IPv4+L4 checksums written";
		body_gso(&units);
		r.extra = (double)g_segs / F.n;
		run(&r, body_gso);
		dump_records(arena, r.impl);
		/* re-emit per output segment so both units are in the output */
		r.unit = "seg";
		for (int i = 0; i < r.reps; i++)
			r.ns[i] *= (double)F.n / g_segs;
		emit(&r);
	}
	return (int)(sink & 0);
}
