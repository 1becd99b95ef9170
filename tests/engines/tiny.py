"""A tiny trace-printing engine for nb-evidence's own tests: the Python twin of tiny.c.

Behaviour switches (for tests of the tool's findings) are flags in BUG below, which tests rewrite
in their copy of this file: "fluence" ignores -fluence, "lie" prints a fluence it did not use,
"crash" raises after part of the trace.
"""
import struct
import sys

BUG = ""


def main(argv):
    fluence, n, floatfile, ts, tf = 1e24, 8, None, -1, -1
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "-fluence":
            fluence = float(argv[i + 1]); i += 2
        elif a == "-detpixels":
            n = int(argv[i + 1]); i += 2
        elif a == "-floatfile":
            floatfile = argv[i + 1]; i += 2
        elif a == "-trace_pixel":
            ts, tf = int(argv[i + 1]), int(argv[i + 2]); i += 3
        elif a == "-dtype":
            i += 2
        else:
            print(f"tiny: error: unknown flag {a}", file=sys.stderr)
            return 2
    if BUG == "fluence":
        fluence = 1e24
    printed_fluence = fluence * 1e6 if BUG == "lie" else fluence
    print("tiny PyTorch-less python engine")
    r_e_sqr, omega, polar, cap, steps = 7.94079248018965e-30, 1e-6, 0.75, 1.0, 10
    img = []
    for s in range(n):
        for f in range(n):
            I = 1e5 * (1.0 + s + 2.0 * f)
            final = I / steps * r_e_sqr * fluence * cap * polar * omega
            img.append(final)
            if s == ts and f == tf:
                print("TRACE_PY: pix0_vector_meters %.15g %.15g %.15g" % (0.1, -0.2, 0.3))
                print("TRACE_PY: hkl_rounded %d %d %d" % (s, f, 0))
                print("TRACE_PY: I_before_scaling %.15g" % I)
                print("TRACE_PY: steps %d" % steps)
                print("TRACE_PY: r_e_sqr %.15g" % r_e_sqr)
                sys.stdout.flush()
                if BUG == "crash":
                    raise RuntimeError("dtype mismatch in tiny engine")
                print("TRACE_PY: fluence_photons_per_m2 %.15g" % printed_fluence)
                print("TRACE_PY: capture_fraction %.15g" % cap)
                print("TRACE_PY: polar %.15g" % polar)
                print("TRACE_PY: omega_pixel %.15g" % omega)
                print("TRACE_PY: I_pixel_final %.15g" % final)
    if floatfile:
        with open(floatfile, "wb") as fh:
            fh.write(struct.pack("<%df" % len(img), *img))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
