# chart.gp - bar chart of bench/fs/run.sh ratios (baseline time / meshfs time).
# gnuplot -e "csv='results/X.csv'; out='results/X.png'; title='...'; hp=1" chart.gp
# Columns: 5 ratio vs passthrough_ll, 6 vs native, 8 vs passthrough_hp (drawn
# when hp=1, the default; run.sh sets hp=0 when passthrough_hp was n/a).
if (!exists("hp")) hp = 1
set datafile separator ','
set terminal pngcairo size 1200,520 noenhanced font ',10'
set output out
set title title
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set ylabel 'speed relative to baseline (log scale; higher is better)'
set logscale y 2
set yrange [0.0155:32]
set ytics ('1/64' 0.015625, '1/32' 0.03125, '1/16' 0.0625, '1/8' 0.125, '1/4' 0.25, '1/2' 0.5, '1' 1, '2' 2, '4' 4, '8' 8, '16' 16, '32' 32)
set grid ytics
set key top left
set xtics rotate by -30
set arrow from graph 0, first 1 to graph 1, first 1 nohead dt 2 lw 1.5 lc rgb '#444444'
if (hp) {
plot csv using 5:xtic(1) skip 1 title 'meshfs vs passthrough_ll' lc rgb '#3b7dd8', \
     ''  using 8 skip 1 title 'meshfs vs passthrough_hp' lc rgb '#5aa05a', \
     ''  using 6 skip 1 title 'meshfs vs native' lc rgb '#e0892b'
} else {
plot csv using 5:xtic(1) skip 1 title 'meshfs vs passthrough_ll' lc rgb '#3b7dd8', \
     ''  using 6 skip 1 title 'meshfs vs native' lc rgb '#e0892b'
}
