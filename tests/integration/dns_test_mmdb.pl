#!/usr/bin/perl
#
# Writes dns-city.mmdb, the City database of the dns integration tests and
# benchmark: client networks with a country and a location, so a test knows
# which member is nearest. Run by CMake at build time into the build tree.
#
#   dns_test_mmdb.pl <out-dir>
#
#   192.0.2.0/24      DE  Berlin        52.52   13.40
#   198.51.100.0/24   FR  Paris         48.86    2.35
#   203.0.113.0/24    JP  Tokyo         35.68  139.69
#   100.64.0.0/24     US  Washington    38.90  -77.04
#   100.64.1.0/24     BR  Sao Paulo    -23.55  -46.63
#   2001:db8:1::/48   DE  Berlin
#   2001:db8:3::/48   JP  Tokyo
#   10.0.0.0/8 .. 42.0.0.0/8: 8192 /24s spread over the globe (benchmark clients)
use strict;
use warnings;

use MaxMind::DB::Writer::Tree;

my $out = shift @ARGV or die "usage: $0 <out-dir>\n";
-d $out or mkdir $out or die "$out: $!\n";

my %types = (
    country   => 'map',
    iso_code  => 'utf8_string',
    names     => 'map',
    en        => 'utf8_string',
    location  => 'map',
    latitude  => 'double',
    longitude => 'double',
);
my $tree = MaxMind::DB::Writer::Tree->new(
    ip_version               => 6,
    record_size              => 28,
    database_type            => 'GeoIP2-City',
    languages                => ['en'],
    description              => { en => 'ibp dns test data' },
    map_key_type_callback    => sub { $types{ $_[0] } // die "no type for key $_[0]\n" },
    remove_reserved_networks => 0,
    alias_ipv6_to_ipv4       => 1,
);
$tree->_set_build_epoch(1700000000);

sub rec {
    my ( $iso, $name, $lat, $lon ) = @_;
    return {
        country  => { iso_code => $iso, names => { en => $name } },
        location => { latitude => $lat + 0.0, longitude => $lon + 0.0 },
    };
}
$tree->insert_network( '192.0.2.0/24',    rec( 'DE', 'Germany',       52.52,  13.40 ) );
$tree->insert_network( '198.51.100.0/24', rec( 'FR', 'France',        48.86,  2.35 ) );
$tree->insert_network( '203.0.113.0/24',  rec( 'JP', 'Japan',         35.68,  139.69 ) );
$tree->insert_network( '100.64.0.0/24',   rec( 'US', 'United States', 38.90,  -77.04 ) );
$tree->insert_network( '100.64.1.0/24',   rec( 'BR', 'Brazil',        -23.55, -46.63 ) );
$tree->insert_network( '2001:db8:1::/48', rec( 'DE', 'Germany',       52.52,  13.40 ) );
$tree->insert_network( '2001:db8:3::/48', rec( 'JP', 'Japan',         35.68,  139.69 ) );
my @cc = qw(DE FR JP US BR GB IN AU ZA CA);
for my $i ( 0 .. 8191 ) {
    my $a = 11 + int( $i / 256 );
    my $b = $i % 256;
    my $lat = ( ( $i * 37 ) % 140 ) - 70;
    my $lon = ( ( $i * 73 ) % 360 ) - 180;
    $tree->insert_network( "$a.$b.0.0/24", rec( $cc[ $i % 10 ], 'Somewhere', $lat, $lon ) );
}
my $path = "$out/dns-city.mmdb";
open my $fh, '>:raw', "$path.tmp" or die "$path.tmp: $!\n";
$tree->write_tree($fh);
close $fh or die "$path.tmp: $!\n";
rename "$path.tmp", $path or die "$path: $!\n";
