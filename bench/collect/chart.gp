# chart.gp - store size over time under the collection soak (bench/collect/run.sh).
# gnuplot -e "csv='results/X.csv'; out='results/X.png'; title='...'" chart.gp
# CSV columns: t_s,node,live_bytes,chunk_bytes,store_bytes,ops,rss_anon_kb;
# node a is drawn.
set datafile separator ','
set terminal pngcairo size 1000,480 noenhanced font ',10'
set output out
set title title
set xlabel 'seconds'
set ylabel 'MiB'
set grid
set key top left
a(c) = strcol(2) eq "a" ? column(c) : NaN
plot csv using 1:(a(3)/1048576) with points lc rgb '#3b7dd8' title 'live data (sum of file sizes)', \
     csv using 1:(a(4)/1048576) with points lc rgb '#5aa05a' title 'chunk bytes (content held)', \
     csv using 1:(a(5)/1048576) with points lc rgb '#e0892b' title 'store file (data.mdb)', \
     csv using 1:(a(7)/1024) with points pt 6 lc rgb '#888888' title 'daemon anonymous memory'
