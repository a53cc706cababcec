/** Edit distance between two strings: the fewest single-character insertions, deletions and substitutions. */
export function levenshtein(a: string, b: string): number {
  // One row of the classic table is enough: each cell needs only its left, upper and upper-left neighbours.
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j)
  for (let i = 1; i <= a.length; i++) {
    const current = [i]
    for (let j = 1; j <= b.length; j++) {
      const substitution = previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1)
      current.push(Math.min(previous[j]! + 1, current[j - 1]! + 1, substitution))
    }
    previous = current
  }
  return previous[b.length]!
}

/**
 * The candidate `word` was most likely meant to be, or undefined when none is close enough to be a typo.
 * `keepReleases`, `keep-releases` and `Keep_Releases` all find `keep_releases`: people carry key styles over
 * from other tools, so case and separators are ignored before distances are measured.
 */
export function didYouMean(word: string, candidates: readonly string[]): string | undefined {
  const wanted = normaliseKey(word)
  // Roughly one typo per three characters; below that, suggestions turn into noise (`url` → `user`).
  const limit = Math.max(1, Math.floor(wanted.length / 3))
  let best: { candidate: string; distance: number } | undefined
  for (const candidate of candidates) {
    const distance = levenshtein(wanted, normaliseKey(candidate))
    if (distance <= limit && (best === undefined || distance < best.distance)) best = { candidate, distance }
  }
  return best?.candidate
}

function normaliseKey(key: string): string {
  return key
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .replaceAll('-', '_')
    .toLowerCase()
}
