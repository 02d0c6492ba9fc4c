# CAVMem stand-in for 400.perlbench: builds a mail-like corpus in memory, then scans
# messages with regular expressions and counts senders and spam words in a hash.
# Message k is picked with probability falling as 1/sqrt(k): a skewed working set, so
# the miss rate grows smoothly as memory shrinks. All input is generated from a fixed
# seed. Prints "ready <messages>" once built, then "tick" per 20,000 messages scanned.
# Usage: perl perlbench.pl <corpus MiB>
use strict;
use warnings;

my $mib = shift // 128;
die "perlbench stand-in: corpus MiB must be 1..65536\n" unless $mib =~ /^\d+$/ && $mib >= 1 && $mib <= 65536;
my @words = map {
    my ($w, $x) = ('', $_ * 2654435761 % 4294967296);
    for (1 .. 3 + $x % 7) { $w .= chr(97 + $x % 26); $x = int($x / 26) + $_ * 7919; }
    $w
} 1 .. 5000;
my $seed = 12345;
sub rnd { $seed = ($seed * 1103515245 + 12345) % 2147483648; return $seed; }
my @msgs;
my $bytes = 0;
while ($bytes < $mib * 1048576) {
    my $m = 'From: ' . $words[rnd() % 5000] . '@' . $words[rnd() % 5000] . ".org\n";
    $m .= join(' ', map { $words[rnd() % 5000] } 1 .. 20 + rnd() % 40) . "\n";
    push @msgs, $m;
    $bytes += length($m) + 200;    # the string plus perl's per-scalar overhead, roughly
}
$| = 1;
my $count = scalar @msgs;
print "ready $count\n";
my %seen;
my $n = 0;
while (1) {
    my $u = rnd() / 2147483648;
    my $m = $msgs[int($count * $u * $u)];
    if ($m =~ /^From: (\w+)@(\w+)\.org/) { $seen{$1}++; $seen{$2} += 2; }
    my $spam = () = $m =~ /\b(?:aa\w*|\w*zz)\b/g;
    $seen{spam} += $spam;
    print "tick\n" if ++$n % 20000 == 0;
}
