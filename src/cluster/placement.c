/* Rendezvous hashing of initiator names over gateway addresses (Thaler and
 * Ravishankar's highest random weight): each (gateway, initiator) pair gets
 * a pseudo-random weight and the initiator goes to the gateway with the
 * highest.  Removing a gateway moves only the initiators it had; adding one
 * takes about 1/n of everybody's.  No state, no table: every gateway
 * computes the same answer from the same list. */
#include <string.h>

#include "cluster/cluster.h"

/* FNV-1a over s, continuing from h. */
static uint64_t place_fnv(const char *s, uint64_t h)
{
  for (; *s; s++) {
    h ^= (unsigned char)*s;
    h *= 0x100000001b3ull;
  }
  return h;
}

/* splitmix64's finaliser: FNV's low bits alone spread poorly. */
static uint64_t place_mix(uint64_t x)
{
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebull;
  x ^= x >> 31;
  return x;
}

uint64_t lg_place_weight(const char *initiator, const char *addr)
{
  uint64_t h = place_fnv(addr, 0xcbf29ce484222325ull);
  h = (h ^ 0xff) * 0x100000001b3ull; /* a separator: ("a","bc") differs from ("ab","c") */
  return place_mix(place_fnv(initiator, h));
}

int lg_place(const char *initiator, const char *const *addrs, size_t n)
{
  int best = -1;
  uint64_t best_w = 0;
  for (size_t i = 0; i < n; i++) {
    uint64_t w = lg_place_weight(initiator, addrs[i]);
    /* ties (practically never): the smaller address, so that order does not matter */
    if (best < 0 || w > best_w || (w == best_w && strcmp(addrs[i], addrs[best]) < 0)) {
      best = (int)i;
      best_w = w;
    }
  }
  return best;
}
