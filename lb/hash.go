package lb

import "math/bits"

// The hash helpers turn a request attribute into the uint64 a consistent-hash
// Picker takes. They are pure functions, allocate nothing, and are safe for
// concurrent use. Envoy hashes the header value, cookie value, source IP
// (without port) and query parameter value with xxHash64, seed 0; so do these,
// so that a remora and an Envoy sidecar send the same key to the same
// endpoint when their rings hold the same endpoints.

// HashHeader returns the hash of an HTTP header value, as Envoy's
// hash_policy.header computes it.
func HashHeader(value string) uint64 { return XXHash64(value, 0) }

// HashCookie returns the hash of a cookie value, as Envoy's
// hash_policy.cookie computes it.
func HashCookie(value string) uint64 { return XXHash64(value, 0) }

// HashSourceIP returns the hash of the downstream IP address in its textual
// form without port (e.g. "10.0.0.7" or "fd00::7"), as Envoy's
// connection_properties.source_ip computes it.
func HashSourceIP(ip string) uint64 { return XXHash64(ip, 0) }

// HashQueryParam returns the hash of a query parameter value, as Envoy's
// hash_policy.query_parameter computes it.
func HashQueryParam(value string) uint64 { return XXHash64(value, 0) }

// CombineHash folds the hash of a further hash policy into an accumulated one,
// the way Envoy combines several hash policies on one route:
// rotate-left-by-one then xor.
func CombineHash(acc, next uint64) uint64 { return bits.RotateLeft64(acc, 1) ^ next }

const (
	prime64x1 uint64 = 0x9E3779B185EBCA87
	prime64x2 uint64 = 0xC2B2AE3D27D4EB4F
	prime64x3 uint64 = 0x165667B19E3779F9
	prime64x4 uint64 = 0x85EBCA77C2B2AE63
	prime64x5 uint64 = 0x27D4EB2F165667C5
)

// XXHash64 returns the XXH64 digest of s with the given seed. It allocates
// nothing and is safe for concurrent use.
func XXHash64(s string, seed uint64) uint64 {
	n := len(s)
	var h uint64
	if n >= 32 {
		v1 := seed + prime64x1 + prime64x2
		v2 := seed + prime64x2
		v3 := seed
		v4 := seed - prime64x1
		for len(s) >= 32 {
			v1 = xxRound(v1, le64(s[0:8]))
			v2 = xxRound(v2, le64(s[8:16]))
			v3 = xxRound(v3, le64(s[16:24]))
			v4 = xxRound(v4, le64(s[24:32]))
			s = s[32:]
		}
		h = bits.RotateLeft64(v1, 1) + bits.RotateLeft64(v2, 7) +
			bits.RotateLeft64(v3, 12) + bits.RotateLeft64(v4, 18)
		h = xxMerge(h, v1)
		h = xxMerge(h, v2)
		h = xxMerge(h, v3)
		h = xxMerge(h, v4)
	} else {
		h = seed + prime64x5
	}
	h += uint64(n)
	for ; len(s) >= 8; s = s[8:] {
		h ^= xxRound(0, le64(s[:8]))
		h = bits.RotateLeft64(h, 27)*prime64x1 + prime64x4
	}
	if len(s) >= 4 {
		h ^= uint64(le32(s)) * prime64x1
		h = bits.RotateLeft64(h, 23)*prime64x2 + prime64x3
		s = s[4:]
	}
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i]) * prime64x5
		h = bits.RotateLeft64(h, 11) * prime64x1
	}
	h ^= h >> 33
	h *= prime64x2
	h ^= h >> 29
	h *= prime64x3
	h ^= h >> 32
	return h
}

// le64 and le32 read little-endian words from a string without copying it;
// the compiler merges the byte loads.
func le64(s string) uint64 {
	_ = s[7]
	return uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
}

func le32(s string) uint32 {
	_ = s[3]
	return uint32(s[0]) | uint32(s[1])<<8 | uint32(s[2])<<16 | uint32(s[3])<<24
}

func xxRound(acc, input uint64) uint64 {
	acc += input * prime64x2
	acc = bits.RotateLeft64(acc, 31)
	return acc * prime64x1
}

func xxMerge(acc, val uint64) uint64 {
	val = xxRound(0, val)
	acc ^= val
	return acc*prime64x1 + prime64x4
}
