;; The WebAssembly kernels behind src/simd_upcase.ts, using 128-bit SIMD.
;;
;; The bytes embedded in src/simd_upcase.ts are compiled from this file; after
;; changing it, regenerate them with
;;   deno run --no-lock --allow-read=src --allow-write=src/simd_upcase.ts bench/build_simd.ts
;; (`--no-lock` because the project's lock is frozen and wabt is only a build
;; tool). Add `--check` to only verify that the embedded bytes are current.
;;
;; The letter test, on each byte lane v of a vector:
;;   t = v + 0x1f (wrapping). The map is one-to-one, and it sends exactly
;;   a..z (0x61..0x7a) to 0x80..0x99, which as signed bytes are -128..-103:
;;   the only lanes with t < -102 (0x9a). So `i8x16.lt_s t, -102` is all ones
;;   on lowercase ASCII letters and zero on every other byte, >= 0x80 included,
;;   in one compare (x86 pcmpgtb) rather than an unsigned range check.
;;   Those lanes then lose bit 0x20, which every lowercase letter has set.
;; The same few instructions are written out for each vector rather than
;; called from a helper, because V8 did not inline such a call: measured, it
;; halved the speed at 1 KiB.
;;
;; Uppercasing is idempotent (an uppercased letter is no longer lowercase), so
;; for lengths of 16 or more the last partial vector is done by redoing the
;; final 16 bytes, overlapping bytes already done, instead of a byte loop.
(module
  ;; 16 MiB, never grown: with initial == maximum no memory.grow can succeed,
  ;; so the ArrayBuffer that JavaScript holds, and carves read buffers from,
  ;; is never detached.
  (memory (export "memory") 256 256)

  ;; Uppercases the ASCII letters of the len bytes at ptr, in place.
  (func (export "upcase") (param $ptr i32) (param $len i32)
    (local $p i32) (local $end i32) (local $b i32)
    (local $v v128) (local $bias v128) (local $limit v128) (local $bit v128)
    ;; Constants live in locals so that they stay in registers in the loops.
    (local.set $bias (v128.const i32x4 0x1f1f1f1f 0x1f1f1f1f 0x1f1f1f1f 0x1f1f1f1f))
    (local.set $limit (v128.const i32x4 0x9a9a9a9a 0x9a9a9a9a 0x9a9a9a9a 0x9a9a9a9a))
    (local.set $bit (v128.const i32x4 0x20202020 0x20202020 0x20202020 0x20202020))
    (local.set $p (local.get $ptr))
    (local.set $end (i32.add (local.get $ptr) (local.get $len)))
    (if (i32.ge_u (local.get $len) (i32.const 16))
      (then
        ;; 64 bytes per round, four independent vectors.
        (block $done (loop $by64
          (br_if $done (i32.gt_u (i32.add (local.get $p) (i32.const 64)) (local.get $end)))
          (v128.store offset=0 (local.get $p)
            (v128.xor (local.tee $v (v128.load offset=0 (local.get $p)))
              (v128.and (local.get $bit)
                (i8x16.lt_s (i8x16.add (local.get $v) (local.get $bias)) (local.get $limit)))))
          (v128.store offset=16 (local.get $p)
            (v128.xor (local.tee $v (v128.load offset=16 (local.get $p)))
              (v128.and (local.get $bit)
                (i8x16.lt_s (i8x16.add (local.get $v) (local.get $bias)) (local.get $limit)))))
          (v128.store offset=32 (local.get $p)
            (v128.xor (local.tee $v (v128.load offset=32 (local.get $p)))
              (v128.and (local.get $bit)
                (i8x16.lt_s (i8x16.add (local.get $v) (local.get $bias)) (local.get $limit)))))
          (v128.store offset=48 (local.get $p)
            (v128.xor (local.tee $v (v128.load offset=48 (local.get $p)))
              (v128.and (local.get $bit)
                (i8x16.lt_s (i8x16.add (local.get $v) (local.get $bias)) (local.get $limit)))))
          (local.set $p (i32.add (local.get $p) (i32.const 64)))
          (br $by64)))
        (block $done (loop $by16
          (br_if $done (i32.gt_u (i32.add (local.get $p) (i32.const 16)) (local.get $end)))
          (v128.store (local.get $p)
            (v128.xor (local.tee $v (v128.load (local.get $p)))
              (v128.and (local.get $bit)
                (i8x16.lt_s (i8x16.add (local.get $v) (local.get $bias)) (local.get $limit)))))
          (local.set $p (i32.add (local.get $p) (i32.const 16)))
          (br $by16)))
        ;; The tail: the last 16 bytes again (see the top of the file).
        (if (i32.lt_u (local.get $p) (local.get $end))
          (then
            (local.set $p (i32.sub (local.get $end) (i32.const 16)))
            (v128.store (local.get $p)
              (v128.xor (local.tee $v (v128.load (local.get $p)))
                (v128.and (local.get $bit)
                  (i8x16.lt_s (i8x16.add (local.get $v) (local.get $bias)) (local.get $limit)))))))
        (return)))
    ;; Fewer than 16 bytes: one at a time.
    (block $done (loop $bytes
      (br_if $done (i32.ge_u (local.get $p) (local.get $end)))
      (local.set $b (i32.load8_u (local.get $p)))
      (if (i32.lt_u (i32.sub (local.get $b) (i32.const 0x61)) (i32.const 26))
        (then (i32.store8 (local.get $p) (i32.sub (local.get $b) (i32.const 0x20)))))
      (local.set $p (i32.add (local.get $p) (i32.const 1)))
      (br $bytes))))

  ;; Uppercases the ASCII letters of the len bytes at ptr, in place, up to the
  ;; first byte >= 0x80, and returns that byte's index (len if there is none).
  ;; Nothing from that byte on is written: a vector is stored only once its
  ;; bytes are known to be all ASCII, and the byte loop finds the exact index.
  (func (export "upcase_prefix") (param $ptr i32) (param $len i32) (result i32)
    (local $p i32) (local $end i32) (local $b i32)
    (local $v0 v128) (local $v1 v128) (local $v2 v128) (local $v3 v128)
    (local $bias v128) (local $limit v128) (local $bit v128)
    (local.set $bias (v128.const i32x4 0x1f1f1f1f 0x1f1f1f1f 0x1f1f1f1f 0x1f1f1f1f))
    (local.set $limit (v128.const i32x4 0x9a9a9a9a 0x9a9a9a9a 0x9a9a9a9a 0x9a9a9a9a))
    (local.set $bit (v128.const i32x4 0x20202020 0x20202020 0x20202020 0x20202020))
    (local.set $p (local.get $ptr))
    (local.set $end (i32.add (local.get $ptr) (local.get $len)))
    (block $scalar
      (br_if $scalar (i32.lt_u (local.get $len) (i32.const 16)))
      (block $done (loop $by64
        (br_if $done (i32.gt_u (i32.add (local.get $p) (i32.const 64)) (local.get $end)))
        (local.set $v0 (v128.load offset=0 (local.get $p)))
        (local.set $v1 (v128.load offset=16 (local.get $p)))
        (local.set $v2 (v128.load offset=32 (local.get $p)))
        (local.set $v3 (v128.load offset=48 (local.get $p)))
        ;; bitmask gathers the top bit of each lane: nonzero means non-ASCII.
        (br_if $done (i8x16.bitmask
          (v128.or (v128.or (local.get $v0) (local.get $v1))
                   (v128.or (local.get $v2) (local.get $v3)))))
        (v128.store offset=0 (local.get $p)
          (v128.xor (local.get $v0)
            (v128.and (local.get $bit)
              (i8x16.lt_s (i8x16.add (local.get $v0) (local.get $bias)) (local.get $limit)))))
        (v128.store offset=16 (local.get $p)
          (v128.xor (local.get $v1)
            (v128.and (local.get $bit)
              (i8x16.lt_s (i8x16.add (local.get $v1) (local.get $bias)) (local.get $limit)))))
        (v128.store offset=32 (local.get $p)
          (v128.xor (local.get $v2)
            (v128.and (local.get $bit)
              (i8x16.lt_s (i8x16.add (local.get $v2) (local.get $bias)) (local.get $limit)))))
        (v128.store offset=48 (local.get $p)
          (v128.xor (local.get $v3)
            (v128.and (local.get $bit)
              (i8x16.lt_s (i8x16.add (local.get $v3) (local.get $bias)) (local.get $limit)))))
        (local.set $p (i32.add (local.get $p) (i32.const 64)))
        (br $by64)))
      (block $done (loop $by16
        (br_if $done (i32.gt_u (i32.add (local.get $p) (i32.const 16)) (local.get $end)))
        (br_if $scalar (i8x16.bitmask (local.tee $v0 (v128.load (local.get $p)))))
        (v128.store (local.get $p)
          (v128.xor (local.get $v0)
            (v128.and (local.get $bit)
              (i8x16.lt_s (i8x16.add (local.get $v0) (local.get $bias)) (local.get $limit)))))
        (local.set $p (i32.add (local.get $p) (i32.const 16)))
        (br $by16)))
      ;; All ASCII so far: an all-ASCII last 16 bytes finish the job, as in
      ;; upcase; otherwise the byte loop finds where the ASCII ends.
      (br_if $scalar (i32.ge_u (local.get $p) (local.get $end)))
      (br_if $scalar (i8x16.bitmask
        (local.tee $v0 (v128.load (i32.sub (local.get $end) (i32.const 16))))))
      (v128.store (i32.sub (local.get $end) (i32.const 16))
        (v128.xor (local.get $v0)
          (v128.and (local.get $bit)
            (i8x16.lt_s (i8x16.add (local.get $v0) (local.get $bias)) (local.get $limit)))))
      (return (local.get $len)))
    (block $done (loop $bytes
      (br_if $done (i32.ge_u (local.get $p) (local.get $end)))
      (local.set $b (i32.load8_u (local.get $p)))
      (if (i32.ge_u (local.get $b) (i32.const 0x80))
        (then (return (i32.sub (local.get $p) (local.get $ptr)))))
      (if (i32.lt_u (i32.sub (local.get $b) (i32.const 0x61)) (i32.const 26))
        (then (i32.store8 (local.get $p) (i32.sub (local.get $b) (i32.const 0x20)))))
      (local.set $p (i32.add (local.get $p) (i32.const 1)))
      (br $bytes)))
    (local.get $len)))
