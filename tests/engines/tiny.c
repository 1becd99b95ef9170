/* A tiny trace-printing engine for nb-evidence's own tests (not physics): it behaves like a
 * nanoBragg-style program — flags, a banner, progress lines, a float image, a stray file in its
 * working directory, and TRACE_C lines whose normalization chain composes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
    double fluence = 1e24; int n = 8; const char *floatfile = NULL; int ts = -1, tf = -1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-fluence") && i + 1 < argc) fluence = atof(argv[++i]);
        else if (!strcmp(argv[i], "-detpixels") && i + 1 < argc) n = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-floatfile") && i + 1 < argc) floatfile = argv[++i];
        else if (!strcmp(argv[i], "-trace_pixel") && i + 2 < argc) { ts = atoi(argv[++i]); tf = atoi(argv[++i]); }
        else { fprintf(stderr, "tiny: error: unknown flag %s\n", argv[i]); return 2; }
    }
    printf("tiny C engine\n");
    FILE *junk = fopen("Fdump.bin", "wb"); if (junk) { fputs("cache", junk); fclose(junk); }
    float *img = calloc((size_t)n * n, sizeof(float));
    double r_e_sqr = 7.94079248018965e-30, omega = 1e-6, polar = 0.75, cap = 1.0;
    int steps = 10;
    for (int s = 0; s < n; s++) {
        for (int f = 0; f < n; f++) {
            double I = 1e5 * (1.0 + s + 2.0 * f);
            double final = I / steps * r_e_sqr * fluence * cap * polar * omega;
            img[s * n + f] = (float)final;
            if (s == ts && f == tf) {
                printf("TRACE: free text line\n");
                printf("TRACE_C: pix0_vector_meters %.15g %.15g %.15g\n", 0.1, -0.2, 0.3);
                printf("TRACE_C: hkl_rounded %d %d %d\n", s, f, 0);
                printf("TRACE_C: I_before_scaling %.15g\n", I);
                printf("TRACE_C: steps %d\n", steps);
                printf("TRACE_C: r_e_sqr %.15g\n", r_e_sqr);
                printf("TRACE_C: fluence_photons_per_m2 %.15g\n", fluence);
                printf("TRACE_C: capture_fraction %.15g\n", cap);
                printf("TRACE_C: polar %.15g\n", polar);
                printf("TRACE_C: omega_pixel %.15g\n", omega);
                printf("TRACE_C: I_pixel_final %.15g\n", final);
            }
        }
        printf("%d%% done\n", (int)(100.0 * (s + 1) / n));
    }
    if (floatfile) { FILE *fh = fopen(floatfile, "wb"); fwrite(img, sizeof(float), (size_t)n * n, fh); fclose(fh); }
    printf("max_I = %g\n", (double)img[n * n - 1]);
    free(img);
    return 0;
}
