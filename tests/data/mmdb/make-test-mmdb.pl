#!/usr/bin/perl
#
# Writes the MaxMind DB files the geo and usage tests and the usage benchmark
# use, with Debian's libmaxmind-db-writer-perl. Run by CMake at build time into
# the build tree; the .mmdb files are never committed.
#
#   make-test-mmdb.pl <out-dir>
#
# Small databases (unit tests; every network is listed here so a test can say
# what it expects):
#
#   test-city.mmdb (GeoIP2-City layout, IPv6 tree with IPv4 aliased)
#     192.0.2.0/24       DE "Germany"
#     198.51.100.0/24    iso_code "XYZ" (not two letters) -> "??"
#     203.0.113.0/25     FR with names but no "en"        -> "FR", ""
#     203.0.113.128/25   a city record without a country  -> "??"
#     2001:db8:1::/48    NL "Netherlands"
#     2001:db8:2::/48    "se" (lower case)                -> "SE" "Sweden"
#   test-country.mmdb (GeoIP2-Country layout)
#     192.0.2.0/24       AT "Austria"   (differs from the City DB on purpose)
#     198.18.0.0/15      CH "Switzerland" (absent from the City DB: fallback)
#     2001:db8:1::/48    BE "Belgium"
#   test-asn.mmdb (GeoLite2-ASN layout)
#     192.0.2.0/24       64500 "Example Net"
#     198.51.100.0/24    64501 without an organisation
#     2001:db8:1::/48    64502 "Example v6 Net"
#     198.18.0.0/15      4200000000 "Big ASN" (a 32-bit number)
#   test-city-v4.mmdb    an IPv4-only City DB (192.0.2.0/24 DE)
#
# Benchmark databases (many networks, deterministic):
#   bench-city.mmdb, bench-asn.mmdb: 8192 IPv4 /24s in 11.0.0.0/8..42.0.0.0/8
#   and 4096 IPv6 /48s under 2a00::/12, each with its own record.
#   bench-ips.txt: 65536 client addresses inside those networks (one a line).
use strict;
use warnings;

use MaxMind::DB::Writer::Tree;

my $out = shift @ARGV or die "usage: $0 <out-dir>\n";
-d $out or mkdir $out or die "$out: $!\n";

my %types = (
    autonomous_system_number       => 'uint32',
    autonomous_system_organization => 'utf8_string',
    city                           => 'map',
    continent                      => 'map',
    code                           => 'utf8_string',
    country                        => 'map',
    geoname_id                     => 'uint32',
    iso_code                       => 'utf8_string',
    names                          => 'map',
    en                             => 'utf8_string',
    de                             => 'utf8_string',
    fr                             => 'utf8_string',
);

sub new_tree {
    my ( $type, $ip_version ) = @_;
    my $tree = MaxMind::DB::Writer::Tree->new(
        ip_version               => $ip_version,
        record_size              => 28,
        database_type            => $type,
        languages                => ['en'],
        description              => { en => "ibp test data ($type)" },
        map_key_type_callback    => sub { $types{ $_[0] } // die "no type for key $_[0]\n" },
        remove_reserved_networks => 0,
        alias_ipv6_to_ipv4       => $ip_version == 6 ? 1 : 0,
    );
    $tree->_set_build_epoch(1700000000);    # same bytes on every build
    return $tree;
}

sub write_db {
    my ( $tree, $name ) = @_;
    my $path = "$out/$name";
    my $tmp  = "$path.tmp";
    open my $fh, '>:raw', $tmp or die "$tmp: $!\n";
    $tree->write_tree($fh);
    close $fh or die "$tmp: $!\n";
    rename $tmp, $path or die "$path: $!\n";
}

sub country {
    my ( $iso, $names ) = @_;
    my %c;
    $c{iso_code} = $iso if defined $iso;
    $c{names}    = $names if $names;
    return { country => \%c, continent => { code => 'EU' } };
}

# ---- small databases ----------------------------------------------------------------------

my $city = new_tree( 'GeoIP2-City', 6 );
$city->insert_network( '192.0.2.0/24', country( 'DE', { en => 'Germany', de => 'Deutschland' } ) );
$city->insert_network( '198.51.100.0/24', country( 'XYZ', { en => 'Nowhere' } ) );
$city->insert_network( '203.0.113.0/25', country( 'FR', { de => 'Frankreich', fr => 'France' } ) );
$city->insert_network( '203.0.113.128/25', { city => { names => { en => 'Atlantis' } } } );
$city->insert_network( '2001:db8:1::/48', country( 'NL', { en => 'Netherlands' } ) );
$city->insert_network( '2001:db8:2::/48', country( 'se', { en => 'Sweden' } ) );
write_db( $city, 'test-city.mmdb' );

my $country = new_tree( 'GeoIP2-Country', 6 );
$country->insert_network( '192.0.2.0/24',    country( 'AT', { en => 'Austria' } ) );
$country->insert_network( '198.18.0.0/15',   country( 'CH', { en => 'Switzerland' } ) );
$country->insert_network( '2001:db8:1::/48', country( 'BE', { en => 'Belgium' } ) );
write_db( $country, 'test-country.mmdb' );

my $asn = new_tree( 'GeoLite2-ASN', 6 );
$asn->insert_network( '192.0.2.0/24',
    { autonomous_system_number => 64500, autonomous_system_organization => 'Example Net' } );
$asn->insert_network( '198.51.100.0/24', { autonomous_system_number => 64501 } );
$asn->insert_network( '2001:db8:1::/48',
    { autonomous_system_number => 64502, autonomous_system_organization => 'Example v6 Net' } );
$asn->insert_network( '198.18.0.0/15',
    { autonomous_system_number => 4200000000, autonomous_system_organization => 'Big ASN' } );
write_db( $asn, 'test-asn.mmdb' );

my $city4 = new_tree( 'GeoIP2-City', 4 );
$city4->insert_network( '192.0.2.0/24', country( 'DE', { en => 'Germany' } ) );
write_db( $city4, 'test-city-v4.mmdb' );

# ---- benchmark databases ------------------------------------------------------------------

my @codes = map { chr( 65 + int( $_ / 26 ) ) . chr( 65 + $_ % 26 ) } 0 .. 249;
my $bench_city = new_tree( 'GeoIP2-City', 6 );
my $bench_asn  = new_tree( 'GeoLite2-ASN', 6 );
my @nets;
for my $i ( 0 .. 8191 ) {
    my ( $a, $b, $c ) = ( 11 + int( $i / 256 ), $i % 256, ( $i * 7 ) % 256 );
    push @nets, [ 4, "$a.$b.$c" ];
}
for my $i ( 0 .. 4095 ) {
    push @nets, [ 6, sprintf( '2a00:%x:%x', 0x100 + int( $i / 64 ), $i % 64 ) ];
}
my $n = 0;
for my $net (@nets) {
    my ( $v, $prefix ) = @$net;
    my $cidr = $v == 4 ? "$prefix.0/24" : "$prefix\::/48";
    my $code = $codes[ $n % @codes ];
    $bench_city->insert_network(
        $cidr,
        {
            country => {
                iso_code   => $code,
                geoname_id => 1000 + $n,
                names      => { en => "Country $code", de => "Land $code" }
            },
            city      => { geoname_id => 50000 + $n, names => { en => "City $n" } },
            continent => { code => 'EU' },
        }
    );
    $bench_asn->insert_network(
        $cidr,
        {
            autonomous_system_number       => 64512 + $n % 1000,
            autonomous_system_organization => 'Network ' . ( $n % 1000 ) . ' Ltd'
        }
    );
    $n++;
}
write_db( $bench_city, 'bench-city.mmdb' );
write_db( $bench_asn,  'bench-asn.mmdb' );

srand(42);
my $ips = "$out/bench-ips.txt";
open my $fh, '>', "$ips.tmp" or die "$ips.tmp: $!\n";
for ( 1 .. 65536 ) {
    my ( $v, $prefix ) = @{ $nets[ int( rand(@nets) ) ] };
    if ( $v == 4 ) {
        printf $fh "%s.%d\n", $prefix, 1 + int( rand(254) );
    }
    else {
        printf $fh "%s:%x:%x::%x\n", $prefix, int( rand(65536) ), int( rand(65536) ),
            1 + int( rand(65535) );
    }
}
close $fh or die "$ips.tmp: $!\n";
rename "$ips.tmp", $ips or die "$ips: $!\n";
