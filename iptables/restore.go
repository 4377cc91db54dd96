package iptables

import (
	"strings"
)

// tableState is one table as iptables-save shows it: the chains that
// exist and the rules, as "-A CHAIN ..." lines.
type tableState struct {
	chains map[string]bool
	rules  []string
}

// parseSave parses iptables-save output into its tables.
func parseSave(text string) map[string]*tableState {
	tables := map[string]*tableState{}
	var cur *tableState
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || strings.HasPrefix(line, "#") || line == "COMMIT":
		case strings.HasPrefix(line, "*"):
			cur = &tableState{chains: map[string]bool{}}
			tables[line[1:]] = cur
		case cur == nil:
		case strings.HasPrefix(line, ":"):
			name, _, _ := strings.Cut(line[1:], " ")
			cur.chains[name] = true
		case strings.HasPrefix(line, "-A "):
			cur.rules = append(cur.rules, line)
		}
	}
	return tables
}

// saveTarget returns the -j argument of an iptables-save rule line.
func saveTarget(line string) string {
	f := strings.Fields(line)
	for i := 0; i+1 < len(f); i++ {
		if f[i] == "-j" {
			return f[i+1]
		}
	}
	return ""
}

// saveChain returns the chain of an iptables-save "-A CHAIN ..." line.
func saveChain(line string) string {
	f := strings.Fields(line)
	if len(f) < 2 {
		return ""
	}
	return f[1]
}

// jumpDeletes returns a "-D" line for every rule in a built-in chain of st
// that jumps to one of chains, as the rule currently stands.
func jumpDeletes(st *tableState, chains []string) []string {
	if st == nil {
		return nil
	}
	want := map[string]bool{}
	for _, c := range chains {
		want[c] = true
	}
	var out []string
	for _, line := range st.rules {
		if !isOwnChain(saveChain(line)) && want[saveTarget(line)] {
			out = append(out, "-D"+strings.TrimPrefix(line, "-A"))
		}
	}
	return out
}

// checkedRules returns the rules whose presence must be checked with
// iptables -C before an install or cleanup: those in built-in chains that
// do not jump to one of our chains (jumps are found in iptables-save
// output instead). Each appears once.
func checkedRules(rs Ruleset) []Rule {
	seen := map[string]bool{}
	var out []Rule
	for _, r := range rs.Rules {
		if !r.builtin() || isOwnChain(r.target()) {
			continue
		}
		key := r.Table + " " + r.Chain + " " + strings.Join(r.Spec, " ")
		if !seen[key] {
			seen[key] = true
			out = append(out, r)
		}
	}
	return out
}

// deleteLine returns the restore line that deletes r.
func deleteLine(r Rule) string { return "-D " + r.Chain + " " + strings.Join(r.Spec, " ") }

// tableDeletes returns the delete lines for table: stale jumps into our
// chains, then the checked rules found present.
func tableDeletes(rs Ruleset, table string, cur map[string]*tableState, present []Rule) []string {
	dels := jumpDeletes(cur[table], rs.chains(table))
	for _, r := range present {
		if r.Table == table {
			dels = append(dels, deleteLine(r))
		}
	}
	return dels
}

// installScript returns the iptables-restore --noflush input that makes
// the system hold exactly rs, whatever part of rs it holds now (cur is the
// current iptables-save output, present the checked rules that exist).
// Each table is one transaction: its chains are created or flushed, our
// old rules in built-in chains deleted, and every rule added again.
func installScript(rs Ruleset, cur map[string]*tableState, present []Rule) string {
	var b strings.Builder
	for _, t := range rs.tables() {
		writeTable(&b, rs, t, tableDeletes(rs, t, cur, present))
	}
	return b.String()
}

// cleanupScript returns the iptables-restore --noflush input that removes
// everything rs installs and is present now; "" when nothing is.
func cleanupScript(rs Ruleset, cur map[string]*tableState, present []Rule) string {
	var b strings.Builder
	for _, t := range rs.tables() {
		dels := tableDeletes(rs, t, cur, present)
		var chains []string
		for _, c := range rs.chains(t) {
			if st := cur[t]; st != nil && st.chains[c] {
				chains = append(chains, c)
			}
		}
		if len(dels) == 0 && len(chains) == 0 {
			continue
		}
		b.WriteString("*" + t + "\n")
		for _, c := range chains {
			b.WriteString(":" + c + " - [0:0]\n")
		}
		for _, d := range dels {
			b.WriteString(d + "\n")
		}
		for _, c := range chains {
			b.WriteString("-X " + c + "\n")
		}
		b.WriteString("COMMIT\n")
	}
	return b.String()
}
