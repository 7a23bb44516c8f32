package access_test

import (
	"fmt"
	"net/netip"

	"github.com/rmbd/rmbd/access"
)

func ExamplePolicy() {
	p := access.Policy{AllowRead: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}
	client, loopback := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("127.0.0.1")
	fmt.Println(p.Allows(access.Add, client, false), p.Allows(access.Read, client, false))
	fmt.Println(p.Allows(access.Admin, client, false), p.Allows(access.Admin, loopback, false), access.Read.Flag())
	// Output:
	// true false
	// false true --allow-read
}
