# chart.gp - bar chart of bench/fs/run.sh ratios (baseline time / meshfs time).
# gnuplot -e "csv='results/X.csv'; out='results/X.png'; title='...'" chart.gp
set datafile separator ','
set terminal pngcairo size 1100,520 noenhanced font ',10'
set output out
set title title
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set ylabel 'speed relative to baseline (log scale; higher is better)'
set logscale y 2
set yrange [0.03:32]
set ytics ('1/32' 0.03125, '1/16' 0.0625, '1/8' 0.125, '1/4' 0.25, '1/2' 0.5, '1' 1, '2' 2, '4' 4, '8' 8, '16' 16, '32' 32)
set grid ytics
set key top left
set xtics rotate by -30
set arrow from graph 0, first 1 to graph 1, first 1 nohead dt 2 lw 1.5 lc rgb '#444444'
plot csv using 5:xtic(1) skip 1 title 'meshfs vs passthrough_ll' lc rgb '#3b7dd8', \
     ''  using 6 skip 1 title 'meshfs vs native' lc rgb '#e0892b'
