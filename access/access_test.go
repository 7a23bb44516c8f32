package access

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestAllows(t *testing.T) {
	lan := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	ip := netip.MustParseAddr
	member := func(a netip.Addr) bool { return a == ip("192.0.2.7") }
	for _, c := range []struct {
		p      Policy
		op     Op
		from   string
		sealed bool
		want   bool
	}{
		{Policy{}, Add, "192.0.2.1", false, true},
		{Policy{}, Read, "192.0.2.1", false, true},
		{Policy{}, Any, "192.0.2.1", false, true},
		{Policy{}, Admin, "192.0.2.1", false, false},
		{Policy{}, Admin, "127.0.0.1", false, true},
		{Policy{}, Admin, "::ffff:127.0.0.1", false, true},
		{Policy{}, Admin, "::1", false, true},
		{Policy{Allow: lan}, Add, "192.0.2.1", false, false},
		{Policy{Allow: lan}, Add, "10.1.2.3", false, true},
		{Policy{Allow: lan}, Add, "::ffff:10.1.2.3", false, true},
		{Policy{Allow: lan}, Read, "192.0.2.1", false, true},
		{Policy{AllowRead: lan}, Read, "192.0.2.1", false, false},
		{Policy{AllowRead: lan}, Add, "192.0.2.1", false, true},
		{Policy{AllowAdmin: lan}, Admin, "10.9.9.9", false, true},
		{Policy{Member: member}, Admin, "192.0.2.7", false, true},
		{Policy{Member: member}, Admin, "192.0.2.8", false, false},
		{Policy{Member: member, Keyed: true}, Admin, "192.0.2.7", false, false},
		{Policy{Keyed: true}, Admin, "192.0.2.8", true, true},
		{Policy{}, Create, "192.0.2.1", false, false},
		{Policy{}, Create, "127.0.0.1", false, true},
		{Policy{AllowCreate: lan}, Create, "10.1.2.3", false, true},
		{Policy{AllowCreate: lan}, Admin, "10.1.2.3", false, false},
		{Policy{AllowAdmin: lan}, Create, "10.1.2.3", false, true},
		{Policy{Protected: true}, Any, "192.0.2.1", false, false},
		{Policy{Protected: true}, Read, "192.0.2.1", false, false},
		{Policy{Protected: true}, Add, "::ffff:192.0.2.1", false, false},
		{Policy{Protected: true}, Read, "127.0.0.1", false, true},
		{Policy{Protected: true}, Admin, "::1", false, true},
		{Policy{Protected: true, Member: member}, Admin, "192.0.2.7", false, false},
	} {
		assert.Equal(t, c.want, c.p.Allows(c.op, ip(c.from), c.sealed), "%+v %v %s sealed=%v", c.p, c.op, c.from, c.sealed)
	}
	assert.Equal(t, "--allow-read", Read.Flag())
}

func TestRulesAndAdmins(t *testing.T) {
	lan := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	assert.False(t, (&Policy{}).Rules())
	for _, p := range []Policy{{Allow: lan}, {AllowRead: lan}, {AllowAdmin: lan}, {AllowCreate: lan}} {
		assert.True(t, p.Rules(), "%+v", p)
	}
	p := Policy{AllowCreate: lan}
	assert.False(t, p.IsAdmin(netip.MustParseAddr("10.1.2.3"), false), "may create, held to quotas")
	assert.True(t, p.IsAdmin(netip.MustParseAddr("127.0.0.1"), false))
	assert.Equal(t, "--auto-create", Create.Flag())
	assert.Contains(t, ProtectedMessage, "--protected-mode=no")
}
