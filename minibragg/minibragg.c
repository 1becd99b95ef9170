/*
 * minibragg: a small nanoBragg-compatible diffraction simulator (the C engine).
 *
 * The contract is docs/minibragg.md; the physics and units are those of
 * shared/docs/nanobragg-facts.md sections 3-5.  A PyTorch engine implements the same contract, and
 * the two are compared trace key by trace key, so every arithmetic choice the contract leaves open
 * is written down here (see "Evaluation order" below) and kept in one place.
 *
 * Build:
 *   gcc -O2 -fno-fast-math -ffp-contract=off -fopenmp -Wall -Wextra -o minibragg minibragg.c -lm
 * (also builds without -fopenmp, single-threaded).
 *
 * Structure: parse the command line into a `config`; turn it into a `sim` (detector frame, crystal
 * vectors for every phi step, HKL grid); run `pixel_intensity` over every pixel of the ROI (the
 * traced pixel goes through the very same function, with a trace record); print the trace, write
 * the image atomically, print statistics.
 *
 * Evaluation order (double precision, no fused multiply-add):
 *   - mm -> m: x / 1000.0;  angstrom -> m: x * 1e-10;  degrees -> radians: x * M_PI / 180.0.
 *   - default beam centre: Xbeam_mm = fpixels * pixel_mm / 2.0 (then / 1000.0 like a given one).
 *   - dot(u, v) = u0*v0 + u1*v1 + u2*v2;  |v| = sqrt(dot(v, v));  unit(v) = v / |v| per component.
 *   - pixel position: P = pix0 + Fdet*f + Sdet*s, per component, left to right.
 *   - omega = pixel*pixel / (R*R) * close_distance / R;  q = (d - i) / lambda_m per component.
 *   - h = dot(a_m, q) with a_m = (phi-rotated a in angstrom) * 1e-10 per component.
 *   - sincg(x, N) = N if x == 0 else sin(N*x) / sin(x), with x = M_PI * h.
 *   - I += F_cell*F_cell*F_latt*F_latt (left to right); F_latt = F_latt_a*F_latt_b*F_latt_c.
 *   - I_pixel_final = I / steps * r_e_sqr * fluence * capture_fraction * polar * omega.
 */

#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef _OPENMP
#include <omp.h>
#define OMP_PRAGMA(x) _Pragma(#x)
#else
#define OMP_PRAGMA(x)
#endif

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

#define R_E_METERS 2.8179403262e-15
#define R_E_SQR 7.94079248018965e-30
#define DEFAULT_FLUENCE 1.25932015286227e29
#define CAPTURE_FRACTION 1.0
/* An HKL box larger than this many grid points is refused (8 bytes each). */
#define MAX_HKL_GRID ((size_t)1 << 28)

/* ------------------------------------------------------------------------------------ errors */

static void die(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));

/* One line on stderr naming the flag or file at fault, exit status 2. Nothing is written after. */
static void die(const char *fmt, ...)
{
    va_list ap;
    fflush(stdout);
    fputs("minibragg: error: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(2);
}

/* ------------------------------------------------------------------------------------ vectors */

static double dot3(const double u[3], const double v[3])
{
    return u[0] * v[0] + u[1] * v[1] + u[2] * v[2];
}

static void cross3(const double u[3], const double v[3], double out[3])
{
    double r[3];
    r[0] = u[1] * v[2] - u[2] * v[1];
    r[1] = u[2] * v[0] - u[0] * v[2];
    r[2] = u[0] * v[1] - u[1] * v[0];
    memcpy(out, r, sizeof r);
}

static double norm3(const double v[3])
{
    return sqrt(dot3(v, v));
}

/* out = v / |v|; a zero vector stays zero. */
static void unit3(const double v[3], double out[3])
{
    double n = norm3(v);
    if (n == 0.0) {
        out[0] = out[1] = out[2] = 0.0;
        return;
    }
    out[0] = v[0] / n;
    out[1] = v[1] / n;
    out[2] = v[2] / n;
}

/* Right-handed rotation of v about the unit axis u by phi (radians), Rodrigues' formula:
 * v' = v cos(phi) + (u x v) sin(phi) + u (u . v)(1 - cos(phi)). */
static void rotate_axis(const double v[3], const double u[3], double phi, double out[3])
{
    double c = cos(phi), s = sin(phi), uxv[3], r[3];
    double ud = dot3(u, v);
    cross3(u, v, uxv);
    for (int k = 0; k < 3; k++)
        r[k] = v[k] * c + uxv[k] * s + u[k] * ud * (1.0 - c);
    memcpy(out, r, sizeof r);
}

/* Right-handed rotations about lab X, Y, Z by ang (radians). */
static void rotate_x(double v[3], double ang)
{
    double c = cos(ang), s = sin(ang), y = v[1], z = v[2];
    v[1] = y * c - z * s;
    v[2] = y * s + z * c;
}

static void rotate_y(double v[3], double ang)
{
    double c = cos(ang), s = sin(ang), x = v[0], z = v[2];
    v[0] = x * c + z * s;
    v[2] = -x * s + z * c;
}

static void rotate_z(double v[3], double ang)
{
    double c = cos(ang), s = sin(ang), x = v[0], y = v[1];
    v[0] = x * c - y * s;
    v[1] = x * s + y * c;
}

static double deg2rad(double deg)
{
    return deg * M_PI / 180.0;
}

/* ---------------------------------------------------------------------------- configuration */

enum pivot { PIVOT_BEAM, PIVOT_SAMPLE };

/* Everything the command line says, in the units it says it (mm, degrees, angstrom). */
struct config {
    const char *mat_file, *hkl_file, *float_file;
    int have_cell;
    double cell[6];
    double misset[3];
    double default_F;
    int Na, Nb, Nc;
    double lambda_A;
    double distance_mm, close_distance_mm;
    int have_close_distance;
    enum pivot pivot;
    double pixel_mm;
    int fpixels, spixels;
    double Xbeam_mm, Ybeam_mm;
    int have_Xbeam, have_Ybeam;
    double fdet[3], sdet[3], odet[3], beam[3], spindle[3];
    double phi_deg, osc_deg;
    int phisteps;
    double flux, exposure, beamsize_mm, fluence;
    double polar_K;
    int nopolar;
    int oversample;
    int have_roi;
    int roi[4]; /* xmin xmax ymin ymax: fast, then slow, inclusive */
    int have_trace;
    int trace_s, trace_f;
};

static void config_defaults(struct config *c)
{
    memset(c, 0, sizeof *c);
    c->default_F = 0.0;
    c->Na = c->Nb = c->Nc = 1;
    c->lambda_A = 1.0;
    c->distance_mm = 100.0;
    c->pivot = PIVOT_BEAM;
    c->pixel_mm = 0.1;
    c->fpixels = c->spixels = 1024;
    double fdet[3] = {0, 0, 1}, sdet[3] = {0, -1, 0}, odet[3] = {1, 0, 0};
    double beam[3] = {1, 0, 0}, spindle[3] = {0, 0, 1};
    memcpy(c->fdet, fdet, sizeof fdet);
    memcpy(c->sdet, sdet, sizeof sdet);
    memcpy(c->odet, odet, sizeof odet);
    memcpy(c->beam, beam, sizeof beam);
    memcpy(c->spindle, spindle, sizeof spindle);
    c->phi_deg = 0.0;
    c->osc_deg = 0.0;
    c->phisteps = 1;
    c->flux = 0.0;
    c->exposure = 1.0;
    c->beamsize_mm = 0.1;
    c->fluence = DEFAULT_FLUENCE;
    c->polar_K = 0.0;
    c->oversample = 1;
}

/* A finite floating-point number, the whole token. */
static int parse_double_token(const char *tok, double *out)
{
    char *end;
    if (*tok == '\0')
        return 0;
    errno = 0;
    double v = strtod(tok, &end);
    if (*end != '\0' || !isfinite(v))
        return 0;
    *out = v;
    return 1;
}

/* A base-10 integer that fits an int, the whole token. */
static int parse_int_token(const char *tok, int *out)
{
    char *end;
    if (*tok == '\0')
        return 0;
    errno = 0;
    long v = strtol(tok, &end, 10);
    if (*end != '\0' || errno == ERANGE || v < INT32_MIN || v > INT32_MAX)
        return 0;
    *out = (int)v;
    return 1;
}

/* The command-line walker: argv[*i] is the flag; its n values follow. */
struct args {
    int argc;
    char **argv;
    int i;
};

static void need_values(const struct args *a, int n)
{
    if (a->i + n >= a->argc)
        die("%s needs %d value%s", a->argv[a->i], n, n == 1 ? "" : "s");
}

static double arg_double(const struct args *a, int k)
{
    double v;
    const char *tok = a->argv[a->i + k];
    if (!parse_double_token(tok, &v))
        die("%s: '%s' is not a number", a->argv[a->i], tok);
    return v;
}

static int arg_int(const struct args *a, int k)
{
    int v;
    const char *tok = a->argv[a->i + k];
    if (!parse_int_token(tok, &v))
        die("%s: '%s' is not an integer", a->argv[a->i], tok);
    return v;
}

static void take_doubles(struct args *a, double *out, int n)
{
    need_values(a, n);
    for (int k = 0; k < n; k++)
        out[k] = arg_double(a, k + 1);
    a->i += n;
}

static double take_double(struct args *a)
{
    double v;
    take_doubles(a, &v, 1);
    return v;
}

static int take_int(struct args *a)
{
    need_values(a, 1);
    int v = arg_int(a, 1);
    a->i += 1;
    return v;
}

static int take_positive_int(struct args *a)
{
    const char *flag = a->argv[a->i];
    int v = take_int(a);
    if (v <= 0)
        die("%s: must be > 0 (got %d)", flag, v);
    return v;
}

static const char *take_string(struct args *a)
{
    need_values(a, 1);
    a->i += 1;
    return a->argv[a->i];
}

/* Flags whose value must be zero because the geometry they select is not implemented. */
static void take_zero_only(struct args *a)
{
    const char *flag = a->argv[a->i];
    double v = take_double(a);
    if (v != 0.0)
        die("%s %s: not supported (only 0)", flag, a->argv[a->i]);
}

static void parse_args(int argc, char **argv, struct config *c)
{
    struct args a = {argc, argv, 1};
    double scratch[3];

    for (; a.i < argc; a.i++) {
        const char *f = argv[a.i];
        if (!strcmp(f, "-mat")) {
            c->mat_file = take_string(&a);
        } else if (!strcmp(f, "-cell")) {
            take_doubles(&a, c->cell, 6);
            c->have_cell = 1;
        } else if (!strcmp(f, "-misset")) {
            take_doubles(&a, c->misset, 3);
        } else if (!strcmp(f, "-hkl")) {
            c->hkl_file = take_string(&a);
        } else if (!strcmp(f, "-default_F")) {
            c->default_F = take_double(&a);
        } else if (!strcmp(f, "-N")) {
            c->Na = c->Nb = c->Nc = take_positive_int(&a);
        } else if (!strcmp(f, "-Na")) {
            c->Na = take_positive_int(&a);
        } else if (!strcmp(f, "-Nb")) {
            c->Nb = take_positive_int(&a);
        } else if (!strcmp(f, "-Nc")) {
            c->Nc = take_positive_int(&a);
        } else if (!strcmp(f, "-lambda")) {
            c->lambda_A = take_double(&a);
            if (c->lambda_A <= 0.0)
                die("-lambda: must be > 0 (got %s)", argv[a.i]);
        } else if (!strcmp(f, "-distance")) {
            c->distance_mm = take_double(&a);
            c->pivot = PIVOT_BEAM;
        } else if (!strcmp(f, "-close_distance")) {
            c->close_distance_mm = take_double(&a);
            c->have_close_distance = 1;
            c->pivot = PIVOT_SAMPLE;
        } else if (!strcmp(f, "-twotheta")) {
            take_zero_only(&a);
            c->pivot = PIVOT_SAMPLE;
        } else if (!strcmp(f, "-pixel")) {
            c->pixel_mm = take_double(&a);
            if (c->pixel_mm <= 0.0)
                die("-pixel: must be > 0 (got %s)", argv[a.i]);
        } else if (!strcmp(f, "-detpixels")) {
            c->fpixels = c->spixels = take_positive_int(&a);
        } else if (!strcmp(f, "-detpixels_x")) {
            c->fpixels = take_positive_int(&a);
        } else if (!strcmp(f, "-detpixels_y")) {
            c->spixels = take_positive_int(&a);
        } else if (!strcmp(f, "-Xbeam")) {
            c->Xbeam_mm = take_double(&a);
            c->have_Xbeam = 1;
        } else if (!strcmp(f, "-Ybeam")) {
            c->Ybeam_mm = take_double(&a);
            c->have_Ybeam = 1;
        } else if (!strcmp(f, "-fdet_vector")) {
            take_doubles(&a, c->fdet, 3);
        } else if (!strcmp(f, "-sdet_vector")) {
            take_doubles(&a, c->sdet, 3);
        } else if (!strcmp(f, "-odet_vector")) {
            take_doubles(&a, c->odet, 3);
        } else if (!strcmp(f, "-beam_vector")) {
            take_doubles(&a, c->beam, 3);
        } else if (!strcmp(f, "-spindle_axis")) {
            take_doubles(&a, c->spindle, 3);
        } else if (!strcmp(f, "-pix0_vector") || !strcmp(f, "-pix0_vector_mm")) {
            take_doubles(&a, scratch, 3); /* accepted, not used (SAMPLE path of nanoBragg) */
        } else if (!strcmp(f, "-detector_rotx") || !strcmp(f, "-detector_roty") ||
                   !strcmp(f, "-detector_rotz")) {
            take_zero_only(&a);
        } else if (!strcmp(f, "-phi")) {
            c->phi_deg = take_double(&a);
        } else if (!strcmp(f, "-osc")) {
            c->osc_deg = take_double(&a);
        } else if (!strcmp(f, "-phisteps")) {
            c->phisteps = take_positive_int(&a);
        } else if (!strcmp(f, "-flux")) {
            c->flux = take_double(&a);
        } else if (!strcmp(f, "-exposure")) {
            c->exposure = take_double(&a);
        } else if (!strcmp(f, "-beamsize")) {
            c->beamsize_mm = take_double(&a);
        } else if (!strcmp(f, "-fluence")) {
            c->fluence = take_double(&a);
        } else if (!strcmp(f, "-polar")) {
            c->polar_K = take_double(&a);
        } else if (!strcmp(f, "-nopolar")) {
            c->nopolar = 1;
        } else if (!strcmp(f, "-oversample")) {
            c->oversample = take_positive_int(&a);
        } else if (!strcmp(f, "-nonoise") || !strcmp(f, "-nointerpolate")) {
            /* accepted: no noise image is ever made; F lookup is always nearest */
        } else if (!strcmp(f, "-floatfile")) {
            c->float_file = take_string(&a);
        } else if (!strcmp(f, "-roi")) {
            need_values(&a, 4);
            for (int k = 0; k < 4; k++)
                c->roi[k] = arg_int(&a, k + 1);
            a.i += 4;
            c->have_roi = 1;
        } else if (!strcmp(f, "-dump_pixel") || !strcmp(f, "-trace_pixel")) {
            need_values(&a, 2);
            c->trace_s = arg_int(&a, 1);
            c->trace_f = arg_int(&a, 2);
            a.i += 2;
            c->have_trace = 1;
        } else {
            die("unknown flag '%s'", f);
        }
    }

    if (!c->mat_file && !c->have_cell)
        die("no crystal: give -mat FILE or -cell a b c alpha beta gamma");
    if (c->have_trace && (c->trace_s < 0 || c->trace_s >= c->spixels || c->trace_f < 0 ||
                          c->trace_f >= c->fpixels))
        die("-dump_pixel/-trace_pixel %d %d: outside the %d x %d (slow x fast) image", c->trace_s,
            c->trace_f, c->spixels, c->fpixels);
    if (c->flux != 0.0 && c->beamsize_mm <= 0.0)
        die("-beamsize: must be > 0 when -flux is given (got %.9g)", c->beamsize_mm);
}

/* ------------------------------------------------------------------------------------ crystal */

/* Reads the 9 numbers of a MOSFLM A matrix (row i = component i of a*, b*, c*). */
static void read_matrix(const char *path, double m[9])
{
    FILE *fp = fopen(path, "r");
    if (!fp)
        die("-mat %s: cannot open: %s", path, strerror(errno));
    char *line = NULL;
    size_t cap = 0;
    int count = 0, lineno = 0;
    while (getline(&line, &cap, fp) != -1) {
        lineno++;
        char *save = NULL;
        for (char *tok = strtok_r(line, " \t\r\n", &save); tok;
             tok = strtok_r(NULL, " \t\r\n", &save)) {
            double v;
            if (!parse_double_token(tok, &v))
                die("%s:%d: '%s' is not a number (-mat)", path, lineno, tok);
            if (count < 9)
                m[count] = v;
            count++;
        }
    }
    free(line);
    fclose(fp);
    if (count != 9)
        die("-mat %s: expected exactly 9 numbers, found %d", path, count);
}

/* Reciprocal vectors of a cell given by lengths (angstrom) and angles (degrees), facts §4.7. */
static void reciprocal_from_cell(const double cell[6], double as[3], double bs[3], double cs[3])
{
    double a = cell[0], b = cell[1], c = cell[2];
    double al = deg2rad(cell[3]), be = deg2rad(cell[4]), ga = deg2rad(cell[5]);
    double sig = (al + be + ga) / 2.0;
    double V = 2.0 * a * b * c *
               sqrt(fabs(sin(sig) * sin(sig - al) * sin(sig - be) * sin(sig - ga)));
    double a_len = b * c * sin(al) / V;
    double b_len = c * a * sin(be) / V;
    double c_len = a * b * sin(ga) / V;
    double cos_al_s = (cos(be) * cos(ga) - cos(al)) / (sin(be) * sin(ga));
    double cos_be_s = (cos(ga) * cos(al) - cos(be)) / (sin(ga) * sin(al));
    double cos_ga_s = (cos(al) * cos(be) - cos(ga)) / (sin(al) * sin(be));
    double sin_ga_s = c / (V * a_len * b_len);

    as[0] = a_len;
    as[1] = 0.0;
    as[2] = 0.0;
    bs[0] = b_len * cos_ga_s;
    bs[1] = b_len * sin_ga_s;
    bs[2] = 0.0;
    cs[0] = c_len * cos_be_s;
    cs[1] = c_len * (cos_al_s - cos_be_s * cos_ga_s) / sin_ga_s;
    cs[2] = c_len * V / (a * b * c * sin_ga_s);
}

struct crystal {
    double a[3], b[3], c[3];    /* direct vectors, angstrom */
    double as[3], bs[3], cs[3]; /* reciprocal vectors, 1/angstrom */
};

/* a*, b*, c* -> direct cell and regenerated reciprocal cell (facts §4.7). */
static void crystal_from_reciprocal(const double as[3], const double bs[3], const double cs[3],
                                    struct crystal *x)
{
    double t[3];
    cross3(bs, cs, t);
    double V = 1.0 / dot3(as, t);
    for (int k = 0; k < 3; k++)
        x->a[k] = V * t[k];
    cross3(cs, as, t);
    for (int k = 0; k < 3; k++)
        x->b[k] = V * t[k];
    cross3(as, bs, t);
    for (int k = 0; k < 3; k++)
        x->c[k] = V * t[k];

    cross3(x->b, x->c, t);
    for (int k = 0; k < 3; k++)
        x->as[k] = t[k] / V;
    cross3(x->c, x->a, t);
    for (int k = 0; k < 3; k++)
        x->bs[k] = t[k] / V;
    cross3(x->a, x->b, t);
    for (int k = 0; k < 3; k++)
        x->cs[k] = t[k] / V;
}

static void build_crystal(const struct config *c, struct crystal *x)
{
    double as[3], bs[3], cs[3];
    if (c->mat_file) {
        double m[9];
        read_matrix(c->mat_file, m);
        for (int k = 0; k < 3; k++) {
            as[k] = m[3 * k + 0] / c->lambda_A;
            bs[k] = m[3 * k + 1] / c->lambda_A;
            cs[k] = m[3 * k + 2] / c->lambda_A;
        }
    } else {
        reciprocal_from_cell(c->cell, as, bs, cs);
        double *vecs[3] = {as, bs, cs};
        for (int v = 0; v < 3; v++) {
            rotate_x(vecs[v], deg2rad(c->misset[0]));
            rotate_y(vecs[v], deg2rad(c->misset[1]));
            rotate_z(vecs[v], deg2rad(c->misset[2]));
        }
    }
    crystal_from_reciprocal(as, bs, cs, x);
}

/* ---------------------------------------------------------------------------------- HKL grid */

struct hkl_grid {
    int present;           /* an -hkl file was read */
    int hmin, kmin, lmin;  /* box origin */
    int nh, nk, nl;        /* box size (0 when the list is empty) */
    double *F;             /* nh*nk*nl, h slowest; default_F where not listed */
    double default_F;
};

struct reflection {
    int h, k, l;
    double F;
};

static void read_hkl(const char *path, double default_F, struct hkl_grid *g)
{
    FILE *fp = fopen(path, "r");
    if (!fp)
        die("-hkl %s: cannot open: %s", path, strerror(errno));

    struct reflection *list = NULL;
    size_t n = 0, cap = 0;
    char *line = NULL;
    size_t linecap = 0;
    int lineno = 0;
    while (getline(&line, &linecap, fp) != -1) {
        lineno++;
        char *p = line;
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p == '#' || *p == '\0' || *p == '\n' || *p == '\r')
            continue;
        char *tok[5], *save = NULL;
        int ntok = 0;
        for (char *t = strtok_r(p, " \t\r\n", &save); t; t = strtok_r(NULL, " \t\r\n", &save)) {
            if (ntok < 5)
                tok[ntok] = t;
            ntok++;
        }
        if (ntok == 0)
            continue;
        if (ntok != 4)
            die("%s:%d: expected 4 columns 'h k l F', found %d", path, lineno, ntok);
        int idx[3];
        for (int k = 0; k < 3; k++)
            if (!parse_int_token(tok[k], &idx[k]))
                die("%s:%d: index '%s' is not an integer", path, lineno, tok[k]);
        double F;
        if (!parse_double_token(tok[3], &F))
            die("%s:%d: F '%s' is not a number", path, lineno, tok[3]);
        if (n == cap) {
            cap = cap ? 2 * cap : 4096;
            struct reflection *grown = realloc(list, cap * sizeof *list);
            if (!grown)
                die("-hkl %s: out of memory", path);
            list = grown;
        }
        list[n].h = idx[0];
        list[n].k = idx[1];
        list[n].l = idx[2];
        list[n].F = F;
        n++;
    }
    free(line);
    fclose(fp);

    g->present = 1;
    g->default_F = default_F;
    g->nh = g->nk = g->nl = 0;
    g->F = NULL;
    if (n == 0) {
        free(list);
        return;
    }
    int hmax, kmax, lmax;
    g->hmin = hmax = list[0].h;
    g->kmin = kmax = list[0].k;
    g->lmin = lmax = list[0].l;
    for (size_t r = 1; r < n; r++) {
        if (list[r].h < g->hmin) g->hmin = list[r].h;
        if (list[r].h > hmax) hmax = list[r].h;
        if (list[r].k < g->kmin) g->kmin = list[r].k;
        if (list[r].k > kmax) kmax = list[r].k;
        if (list[r].l < g->lmin) g->lmin = list[r].l;
        if (list[r].l > lmax) lmax = list[r].l;
    }
    size_t nh = (size_t)((long)hmax - g->hmin + 1), nk = (size_t)((long)kmax - g->kmin + 1),
           nl = (size_t)((long)lmax - g->lmin + 1);
    if (nh > MAX_HKL_GRID || nk > MAX_HKL_GRID || nl > MAX_HKL_GRID ||
        nh * nk > MAX_HKL_GRID || nh * nk * nl > MAX_HKL_GRID)
        die("-hkl %s: index range h %d..%d k %d..%d l %d..%d is too large", path, g->hmin, hmax,
            g->kmin, kmax, g->lmin, lmax);
    g->nh = (int)nh;
    g->nk = (int)nk;
    g->nl = (int)nl;
    g->F = malloc(nh * nk * nl * sizeof *g->F);
    if (!g->F)
        die("-hkl %s: out of memory for the HKL grid", path);
    for (size_t t = 0; t < nh * nk * nl; t++)
        g->F[t] = default_F;
    /* a reflection listed twice: the later line wins */
    for (size_t r = 0; r < n; r++) {
        size_t t = ((size_t)(list[r].h - g->hmin) * nk + (size_t)(list[r].k - g->kmin)) * nl +
                   (size_t)(list[r].l - g->lmin);
        g->F[t] = list[r].F;
    }
    free(list);
}

/* Fdump.bin in the working directory: int32 hmin hmax kmin kmax lmin lmax, then the float64
 * grid (h slowest, l fastest), native byte order. A cache nanoBragg users expect; never read. */
static void write_fdump(const struct hkl_grid *g)
{
    FILE *fp = fopen("Fdump.bin", "wb");
    if (!fp) {
        fprintf(stderr, "WARNING: cannot write Fdump.bin: %s\n", strerror(errno));
        return;
    }
    int32_t hdr[6] = {g->hmin, g->hmin + g->nh - 1, g->kmin, g->kmin + g->nk - 1,
                      g->lmin, g->lmin + g->nl - 1};
    size_t count = (size_t)g->nh * g->nk * g->nl;
    int ok = fwrite(hdr, sizeof hdr, 1, fp) == 1;
    if (ok && count)
        ok = fwrite(g->F, sizeof *g->F, count, fp) == count;
    if (fclose(fp) != 0)
        ok = 0;
    if (!ok)
        fprintf(stderr, "WARNING: writing Fdump.bin failed: %s\n", strerror(errno));
}

/* F of the nearest reflection (h0, k0, l0); default_F outside the listed box or when unlisted. */
static inline double lookup_F(const struct hkl_grid *g, double h0, double k0, double l0)
{
    if (g->nh == 0)
        return g->default_F;
    if (!(h0 >= g->hmin && h0 < (double)g->hmin + g->nh && k0 >= g->kmin &&
          k0 < (double)g->kmin + g->nk && l0 >= g->lmin && l0 < (double)g->lmin + g->nl))
        return g->default_F;
    size_t t = ((size_t)((int)h0 - g->hmin) * g->nk + (size_t)((int)k0 - g->kmin)) * g->nl +
               (size_t)((int)l0 - g->lmin);
    return g->F[t];
}

/* ---------------------------------------------------------------------------------- simulation */

/* The crystal at one phi step. */
struct phi_step {
    double a_m[3], b_m[3], c_m[3];       /* metres, what h = a.q uses */
    double a_A[3], b_A[3], c_A[3];       /* angstrom, for the trace */
    double as_A[3], bs_A[3], cs_A[3];    /* 1/angstrom, for the trace */
};

/* Everything a pixel needs, in SI units (metres, radians), fixed before the pixel loop. */
struct sim {
    int fpixels, spixels, oversample, phisteps, steps;
    double pixel_m;
    double pix0[3], fdet[3], sdet[3], odet[3], beam[3];
    double close_distance_m, distance_m;
    double lambda_m, lambda_A;
    double fluence;
    int nopolar;
    double polar_K;
    double B_in[3], E_in[3]; /* polarization frame (used when K != 0) */
    double Na, Nb, Nc;
    struct phi_step *step;
    struct hkl_grid hkl;
};

/* The trace record of one pixel (which sub-pixel / phi step each value is from: the contract). */
struct pixel_trace {
    double pos[3], R, omega_first, obliquity, diffracted[3], q[3];
    double hkl_frac[3];
    int hkl_rounded[3];
    double F_latt_a, F_latt_b, F_latt_c, F_latt, F_cell;
    double I_before, polar_last, omega_last, cos2theta_last, I_final;
};

/* Detector frame and pix0 (contract "Geometry"). Prints the odet WARNING when it applies. */
static void build_detector(const struct config *c, struct sim *s)
{
    unit3(c->beam, s->beam);
    unit3(c->fdet, s->fdet);
    unit3(c->sdet, s->sdet);
    if (norm3(c->odet) != 1.0) {
        double fxs[3];
        printf("WARNING: auto-generating odet_vector\n");
        cross3(s->fdet, s->sdet, fxs);
        unit3(fxs, s->odet);
    } else {
        unit3(c->odet, s->odet);
    }

    s->pixel_m = c->pixel_mm / 1000.0;
    double Xbeam_mm = c->have_Xbeam ? c->Xbeam_mm : c->fpixels * c->pixel_mm / 2.0;
    double Ybeam_mm = c->have_Ybeam ? c->Ybeam_mm : c->spixels * c->pixel_mm / 2.0;
    double Xbeam = Xbeam_mm / 1000.0, Ybeam = Ybeam_mm / 1000.0;

    double ratio = dot3(s->beam, s->odet);
    s->distance_m = c->distance_mm / 1000.0;
    if (c->pivot == PIVOT_SAMPLE && c->have_close_distance) {
        s->close_distance_m = c->close_distance_mm / 1000.0;
        s->distance_m = s->close_distance_m / ratio;
    } else {
        s->close_distance_m = fabs(ratio * s->distance_m);
    }
    const double *along = c->pivot == PIVOT_BEAM ? s->beam : s->odet;
    double length = c->pivot == PIVOT_BEAM ? s->distance_m : s->close_distance_m;
    for (int k = 0; k < 3; k++)
        s->pix0[k] = -Xbeam * s->fdet[k] - Ybeam * s->sdet[k] + length * along[k];
}

static void build_sim(const struct config *c, const struct crystal *x, struct sim *s)
{
    s->fpixels = c->fpixels;
    s->spixels = c->spixels;
    s->oversample = c->oversample;
    s->phisteps = c->phisteps;
    s->steps = c->phisteps * c->oversample * c->oversample;
    build_detector(c, s);

    s->lambda_A = c->lambda_A;
    s->lambda_m = c->lambda_A * 1e-10;
    s->fluence = c->flux != 0.0
                     ? c->flux * c->exposure / ((c->beamsize_mm * 1e-3) * (c->beamsize_mm * 1e-3))
                     : c->fluence;
    s->nopolar = c->nopolar;
    s->polar_K = c->polar_K;
    /* polarization axis p = (0, 0, 1); B_in = unit(p x i), E_in = unit(i x B_in) */
    double p[3] = {0.0, 0.0, 1.0}, t[3];
    cross3(p, s->beam, t);
    unit3(t, s->B_in);
    cross3(s->beam, s->B_in, t);
    unit3(t, s->E_in);

    s->Na = c->Na;
    s->Nb = c->Nb;
    s->Nc = c->Nc;

    double spindle[3];
    unit3(c->spindle, spindle);
    s->step = malloc((size_t)c->phisteps * sizeof *s->step);
    if (!s->step)
        die("-phisteps %d: out of memory", c->phisteps);
    double step_deg = c->osc_deg / c->phisteps;
    for (int i = 0; i < c->phisteps; i++) {
        struct phi_step *st = &s->step[i];
        double phi = deg2rad(c->phi_deg + i * step_deg);
        rotate_axis(x->a, spindle, phi, st->a_A);
        rotate_axis(x->b, spindle, phi, st->b_A);
        rotate_axis(x->c, spindle, phi, st->c_A);
        rotate_axis(x->as, spindle, phi, st->as_A);
        rotate_axis(x->bs, spindle, phi, st->bs_A);
        rotate_axis(x->cs, spindle, phi, st->cs_A);
        for (int k = 0; k < 3; k++) {
            st->a_m[k] = st->a_A[k] * 1e-10;
            st->b_m[k] = st->b_A[k] * 1e-10;
            st->c_m[k] = st->c_A[k] * 1e-10;
        }
    }
}

static inline double sincg(double x, double N)
{
    return x == 0.0 ? N : sin(N * x) / sin(x);
}

/* The intensity of one pixel (slow spix, fast fpix), I_pixel_final. With tr != NULL the values
 * the trace prints are recorded on the way; the arithmetic is the same either way. */
static double pixel_intensity(const struct sim *s, int spix, int fpix, struct pixel_trace *tr)
{
    const int n = s->oversample;
    const double sub = s->pixel_m / n;
    const double *i_vec = s->beam;
    double I = 0.0, polar = 1.0, omega = 0.0, cos2theta = 0.0;

    for (int v = 0; v < n; v++) {
        const double Sdet = sub * (spix * n + v + 0.5);
        for (int u = 0; u < n; u++) {
            const double Fdet = sub * (fpix * n + u + 0.5);
            double P[3], d[3], q[3];
            for (int k = 0; k < 3; k++)
                P[k] = s->pix0[k] + Fdet * s->fdet[k] + Sdet * s->sdet[k];
            const double R = norm3(P);
            for (int k = 0; k < 3; k++)
                d[k] = P[k] / R;
            omega = s->pixel_m * s->pixel_m / (R * R) * s->close_distance_m / R;
            for (int k = 0; k < 3; k++)
                q[k] = (d[k] - i_vec[k]) / s->lambda_m;
            cos2theta = dot3(i_vec, d);
            if (s->nopolar) {
                polar = 1.0;
            } else if (s->polar_K == 0.0) {
                polar = 0.5 * (1.0 + cos2theta * cos2theta);
            } else {
                const double c2 = cos2theta * cos2theta, s2 = 1.0 - c2;
                const double psi = -atan2(dot3(d, s->B_in), dot3(d, s->E_in));
                polar = 0.5 * (1.0 + c2 - s->polar_K * cos(2.0 * psi) * s2);
            }
            const int first_sub = tr && v == 0 && u == 0;
            if (first_sub) {
                memcpy(tr->pos, P, sizeof P);
                tr->R = R;
                tr->omega_first = omega;
                tr->obliquity = s->close_distance_m / R;
                memcpy(tr->diffracted, d, sizeof d);
                memcpy(tr->q, q, sizeof q);
            }

            for (int t = 0; t < s->phisteps; t++) {
                const struct phi_step *st = &s->step[t];
                const double h = dot3(st->a_m, q);
                const double k = dot3(st->b_m, q);
                const double l = dot3(st->c_m, q);
                const double Fa = s->Na > 1 ? sincg(M_PI * h, s->Na) : 1.0;
                const double Fb = s->Nb > 1 ? sincg(M_PI * k, s->Nb) : 1.0;
                const double Fc = s->Nc > 1 ? sincg(M_PI * l, s->Nc) : 1.0;
                const double F_latt = Fa * Fb * Fc;
                const double h0 = ceil(h - 0.5), k0 = ceil(k - 0.5), l0 = ceil(l - 0.5);
                const double F_cell = lookup_F(&s->hkl, h0, k0, l0);
                I += F_cell * F_cell * F_latt * F_latt;
                if (first_sub && t == 0) {
                    tr->hkl_frac[0] = h;
                    tr->hkl_frac[1] = k;
                    tr->hkl_frac[2] = l;
                    const double r[3] = {h0, k0, l0};
                    for (int m = 0; m < 3; m++)
                        tr->hkl_rounded[m] = fabs(r[m]) < 2e9 ? (int)r[m] : 0;
                    tr->F_latt_a = Fa;
                    tr->F_latt_b = Fb;
                    tr->F_latt_c = Fc;
                    tr->F_latt = F_latt;
                    tr->F_cell = F_cell;
                }
            }
        }
    }
    const double I_final =
        I / s->steps * R_E_SQR * s->fluence * CAPTURE_FRACTION * polar * omega;
    if (tr) {
        tr->I_before = I;
        tr->polar_last = polar;
        tr->omega_last = omega;
        tr->cos2theta_last = cos2theta;
        tr->I_final = I_final;
    }
    return I_final;
}

/* Pixel ranges actually computed: the ROI clipped to the detector (inclusive bounds). */
struct region {
    int f0, f1, s0, s1;
};

static struct region compute_region(const struct config *c)
{
    struct region r = {0, c->fpixels - 1, 0, c->spixels - 1};
    if (c->have_roi) {
        if (c->roi[0] > r.f0) r.f0 = c->roi[0];
        if (c->roi[1] < r.f1) r.f1 = c->roi[1];
        if (c->roi[2] > r.s0) r.s0 = c->roi[2];
        if (c->roi[3] < r.s1) r.s1 = c->roi[3];
        if (r.f0 > r.f1 || r.s0 > r.s1)
            die("-roi %d %d %d %d: selects no pixel of the %d x %d (slow x fast) image",
                c->roi[0], c->roi[1], c->roi[2], c->roi[3], c->spixels, c->fpixels);
    }
    return r;
}

/* The image loop: rows of the region in parallel, each pixel independent (results do not depend
 * on the thread count). Prints "  N% done" as each tenth of the rows completes. */
static void render(const struct sim *s, const struct region *r, float *image)
{
    const int nrows = r->s1 - r->s0 + 1;
    int rows_done = 0, tenths_printed = 0;

    OMP_PRAGMA(omp parallel for schedule(dynamic, 4))
    for (int j = r->s0; j <= r->s1; j++) {
        float *row = image + (size_t)j * s->fpixels;
        for (int i = r->f0; i <= r->f1; i++)
            row[i] = (float)pixel_intensity(s, j, i, NULL);
        int done;
        OMP_PRAGMA(omp atomic capture)
        done = ++rows_done;
        const int tenths = (int)((long)done * 10 / nrows);
        if (tenths != (int)((long)(done - 1) * 10 / nrows)) {
            /* this row crossed a tenth; print every tenth not yet printed, in order */
            OMP_PRAGMA(omp critical(progress))
            {
                while (tenths_printed < tenths) {
                    tenths_printed++;
                    printf("  %d%% done\n", tenths_printed * 10);
                }
                fflush(stdout);
            }
        }
    }
}

/* -------------------------------------------------------------------------------------- output */

static void print_vec(const char *key, const double v[3])
{
    printf("TRACE_C: %s %.15g %.15g %.15g\n", key, v[0], v[1], v[2]);
}

static void print_num(const char *key, double v)
{
    printf("TRACE_C: %s %.15g\n", key, v);
}

static void print_int(const char *key, int v)
{
    printf("TRACE_C: %s %d\n", key, v);
}

/* The 40 keys of facts §5, in order. */
static void print_trace(const struct sim *s, int spix, int fpix, const struct pixel_trace *tr,
                        float stored)
{
    const struct phi_step *st0 = &s->step[0];
    printf("TRACE_CONFIG: tracing pixel (spixel=%d, fpixel=%d)\n", spix, fpix);
    print_vec("pix0_vector_meters", s->pix0);
    print_vec("fdet_vec", s->fdet);
    print_vec("sdet_vec", s->sdet);
    print_vec("pixel_pos_meters", tr->pos);
    print_num("R_distance_meters", tr->R);
    print_num("omega_pixel_sr", tr->omega_first);
    print_num("close_distance_meters", s->close_distance_m);
    print_num("obliquity_factor", tr->obliquity);
    print_vec("diffracted_vec", tr->diffracted);
    print_vec("incident_vec", s->beam);
    print_num("lambda_meters", s->lambda_m);
    print_num("lambda_angstroms", s->lambda_A);
    print_vec("scattering_vec_A_inv", tr->q);
    print_vec("rot_a_angstroms", st0->a_A);
    print_vec("rot_b_angstroms", st0->b_A);
    print_vec("rot_c_angstroms", st0->c_A);
    print_vec("rot_a_star_A_inv", st0->as_A);
    print_vec("rot_b_star_A_inv", st0->bs_A);
    print_vec("rot_c_star_A_inv", st0->cs_A);
    print_vec("hkl_frac", tr->hkl_frac);
    printf("TRACE_C: hkl_rounded %d %d %d\n", tr->hkl_rounded[0], tr->hkl_rounded[1],
           tr->hkl_rounded[2]);
    print_num("F_latt_a", tr->F_latt_a);
    print_num("F_latt_b", tr->F_latt_b);
    print_num("F_latt_c", tr->F_latt_c);
    print_num("F_latt", tr->F_latt);
    print_num("F_cell", tr->F_cell);
    print_num("I_before_scaling", tr->I_before);
    print_num("r_e_meters", R_E_METERS);
    print_num("r_e_sqr", R_E_SQR);
    print_num("fluence_photons_per_m2", s->fluence);
    print_int("steps", s->steps);
    print_int("oversample_thick", 0);
    print_int("oversample_polar", 0);
    print_int("oversample_omega", 0);
    print_num("capture_fraction", CAPTURE_FRACTION);
    print_num("polar", tr->polar_last);
    print_num("omega_pixel", tr->omega_last);
    print_num("cos_2theta", tr->cos2theta_last);
    print_num("I_pixel_final", tr->I_final);
    print_num("floatimage_accumulated", (double)stored);
}

/* Raw little-endian float32 image, written to PATH.tmp.<pid> then renamed; on failure nothing is
 * left behind and the run fails. */
static void write_floatfile(const char *path, const float *image, size_t count)
{
    size_t len = strlen(path) + 32;
    char *tmp = malloc(len);
    if (!tmp)
        die("-floatfile %s: out of memory", path);
    snprintf(tmp, len, "%s.tmp.%ld", path, (long)getpid());
    FILE *fp = fopen(tmp, "wb");
    if (!fp)
        die("-floatfile %s: cannot create %s: %s", path, tmp, strerror(errno));

    const uint32_t probe = 1;
    const int little = *(const unsigned char *)&probe == 1;
    int ok = 1;
    if (little) {
        ok = fwrite(image, sizeof *image, count, fp) == count;
    } else {
        for (size_t t = 0; ok && t < count; t++) {
            unsigned char b[4], r[4];
            memcpy(b, &image[t], 4);
            r[0] = b[3], r[1] = b[2], r[2] = b[1], r[3] = b[0];
            ok = fwrite(r, 1, 4, fp) == 4;
        }
    }
    int saved = errno;
    if (fclose(fp) != 0 && ok) {
        ok = 0;
        saved = errno;
    }
    if (ok && rename(tmp, path) != 0) {
        ok = 0;
        saved = errno;
    }
    if (!ok) {
        remove(tmp);
        die("-floatfile %s: write failed: %s", path, strerror(saved));
    }
    free(tmp);
}

/* max_I (first maximum in memory order), mean, rms, rmsd over the computed region, serially. */
static void print_stats(const float *image, int fpixels, const struct region *r)
{
    double max_I = 0.0, sum = 0.0, sumsq = 0.0;
    int max_s = r->s0, max_f = r->f0, first = 1;
    size_t n = 0;
    for (int j = r->s0; j <= r->s1; j++) {
        for (int i = r->f0; i <= r->f1; i++) {
            double v = image[(size_t)j * fpixels + i];
            if (first || v > max_I) {
                max_I = v;
                max_s = j;
                max_f = i;
                first = 0;
            }
            sum += v;
            sumsq += v * v;
            n++;
        }
    }
    double mean = sum / n, rms = sqrt(sumsq / n), dev = 0.0;
    for (int j = r->s0; j <= r->s1; j++) {
        for (int i = r->f0; i <= r->f1; i++) {
            double e = image[(size_t)j * fpixels + i] - mean;
            dev += e * e;
        }
    }
    printf("max_I = %.9g at slow %d fast %d\n", max_I, max_s, max_f);
    printf("mean= %.9g rms= %.9g rmsd= %.9g\n", mean, rms, sqrt(dev / n));
}

/* -------------------------------------------------------------------------------------- main */

int main(int argc, char **argv)
{
    struct config cfg;
    config_defaults(&cfg);
    parse_args(argc, argv, &cfg);
    const struct region region = compute_region(&cfg);

    struct crystal xtal;
    build_crystal(&cfg, &xtal);
    struct sim sim;
    memset(&sim, 0, sizeof sim);
    sim.hkl.default_F = cfg.default_F;
    if (cfg.hkl_file)
        read_hkl(cfg.hkl_file, cfg.default_F, &sim.hkl);

    printf("minibragg C engine\n");
    build_sim(&cfg, &xtal, &sim);
    if (cfg.have_trace && (cfg.trace_s < region.s0 || cfg.trace_s > region.s1 ||
                           cfg.trace_f < region.f0 || cfg.trace_f > region.f1))
        printf("WARNING: trace pixel (slow %d, fast %d) is outside the ROI; its image value is 0\n",
               cfg.trace_s, cfg.trace_f);
    if (sim.hkl.present)
        write_fdump(&sim.hkl);
    fflush(stdout);

    const size_t npix = (size_t)cfg.spixels * cfg.fpixels;
    float *image = calloc(npix, sizeof *image);
    if (!image)
        die("-detpixels %d x %d: out of memory for the image", cfg.spixels, cfg.fpixels);
    render(&sim, &region, image);

    if (cfg.have_trace) {
        struct pixel_trace tr;
        pixel_intensity(&sim, cfg.trace_s, cfg.trace_f, &tr);
        print_trace(&sim, cfg.trace_s, cfg.trace_f, &tr,
                    image[(size_t)cfg.trace_s * cfg.fpixels + cfg.trace_f]);
    }
    if (cfg.float_file)
        write_floatfile(cfg.float_file, image, npix);
    print_stats(image, cfg.fpixels, &region);

    free(image);
    free(sim.step);
    free(sim.hkl.F);
    return 0;
}
